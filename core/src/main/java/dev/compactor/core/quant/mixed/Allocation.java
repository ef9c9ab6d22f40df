package dev.compactor.core.quant.mixed;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Chooses one quantization option per linear so that the summed sensitivity is smallest and the
 * summed stored bytes stay within a budget: a multiple-choice knapsack, solved exactly (no byte
 * discretisation) by dynamic programming over the Pareto frontier of partial plans. After each
 * linear the frontier keeps, for every reachable byte total within the budget, only plans whose
 * sensitivity is strictly lower than every cheaper plan's; the frontier never holds more points
 * than distinct byte totals, which stays small when many linears share a shape (a decoder's do).
 * Ties in sensitivity keep the cheaper plan.
 */
public final class Allocation {

  /**
   * One candidate for one linear.
   *
   * @param name option label, e.g. {@code int4g32}
   * @param bytes stored bytes of the linear under this option (codes, scales, zero points)
   * @param sensitivity measured loss increase when only this linear takes this option
   */
  public record Option(String name, long bytes, double sensitivity) {}

  /**
   * The chosen plan.
   *
   * @param choice index into each linear's option list
   * @param bytes total stored bytes
   * @param sensitivity total sensitivity (the additive proxy)
   */
  public record Plan(int[] choice, long bytes, double sensitivity) {}

  private Allocation() {}

  /**
   * The plan of least total sensitivity with total bytes {@code <= budget}.
   *
   * @param options per linear, its non-empty candidate list
   * @throws IllegalArgumentException when even the smallest option of every linear exceeds the
   *     budget
   */
  public static Plan solve(List<List<Option>> options, long budget) {
    long smallest = 0;
    for (List<Option> l : options) {
      if (l.isEmpty()) {
        throw new IllegalArgumentException("every linear needs at least one option");
      }
      smallest += l.stream().mapToLong(Option::bytes).min().getAsLong();
    }
    if (smallest > budget) {
      throw new IllegalArgumentException(
          "budget of "
              + budget
              + " bytes is infeasible: the smallest option of every linear already takes "
              + smallest
              + " bytes");
    }
    // frontier points of the prefix: bytes ascending, sensitivity strictly descending
    long[] bytes = {0};
    double[] sens = {0};
    List<int[]> parent = new ArrayList<>(); // per linear: point -> previous point * K + option
    for (List<Option> l : options) {
      int k = l.size();
      int n = bytes.length * k;
      long[] cb = new long[n];
      double[] cs = new double[n];
      int[] from = new int[n];
      int m = 0;
      for (int p = 0; p < bytes.length; p++) {
        for (int o = 0; o < k; o++) {
          long b = bytes[p] + l.get(o).bytes();
          if (b <= budget) {
            cb[m] = b;
            cs[m] = sens[p] + l.get(o).sensitivity();
            from[m] = p * k + o;
            m++;
          }
        }
      }
      Integer[] order = new Integer[m];
      for (int i = 0; i < m; i++) {
        order[i] = i;
      }
      Arrays.sort(
          order,
          (x, y) -> cb[x] != cb[y] ? Long.compare(cb[x], cb[y]) : Double.compare(cs[x], cs[y]));
      long[] nb = new long[m];
      double[] ns = new double[m];
      int[] np = new int[m];
      int kept = 0;
      for (int i : order) {
        if (kept == 0 || cs[i] < ns[kept - 1]) {
          nb[kept] = cb[i];
          ns[kept] = cs[i];
          np[kept] = from[i];
          kept++;
        }
      }
      bytes = Arrays.copyOf(nb, kept);
      sens = Arrays.copyOf(ns, kept);
      parent.add(Arrays.copyOf(np, kept));
    }
    // the last point has the most bytes within budget and the least sensitivity
    int point = bytes.length - 1;
    int[] choice = new int[options.size()];
    for (int i = options.size() - 1; i >= 0; i--) {
      int k = options.get(i).size();
      int code = parent.get(i)[point];
      choice[i] = code % k;
      point = code / k;
    }
    return new Plan(choice, bytes[bytes.length - 1], sens[sens.length - 1]);
  }
}
