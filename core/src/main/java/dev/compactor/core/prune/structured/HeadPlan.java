package dev.compactor.core.prune.structured;

import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Which attention heads of one layer stay, consistent with grouped-query attention: KV head {@code
 * g} serves query heads {@code g·rep .. (g+1)·rep - 1} (HF's {@code repeat_kv}), and after pruning
 * every kept KV head still serves the same number of consecutive query heads.
 *
 * @param keptQuery kept query heads, ascending, old indices
 * @param keptKv kept KV heads, ascending, old indices
 */
public record HeadPlan(int[] keptQuery, int[] keptKv) {

  /**
   * Chooses the heads to remove from per-query-head {@code scores}: in {@link HeadMode#KV_GROUPS}
   * the {@code remove} KV groups with the lowest summed score, in {@link HeadMode#QUERY_HEADS} the
   * {@code remove} lowest query heads of every KV group. Ties remove the higher index.
   */
  public static HeadPlan choose(double[] scores, int kvHeads, HeadMode mode, int remove) {
    int heads = scores.length;
    int rep = heads / kvHeads;
    if (heads % kvHeads != 0) {
      throw new IllegalArgumentException(heads + " heads are not a multiple of " + kvHeads);
    }
    if (mode == HeadMode.KV_GROUPS) {
      double[] group = new double[kvHeads];
      for (int h = 0; h < heads; h++) {
        group[h / rep] += scores[h];
      }
      int[] keptKv = keepHighest(group, kvHeads - remove);
      int[] keptQuery = new int[keptKv.length * rep];
      for (int i = 0; i < keptKv.length; i++) {
        for (int r = 0; r < rep; r++) {
          keptQuery[i * rep + r] = keptKv[i] * rep + r;
        }
      }
      return new HeadPlan(keptQuery, keptKv);
    }
    List<Integer> kept = new ArrayList<>();
    for (int g = 0; g < kvHeads; g++) {
      int[] keep = keepHighest(Arrays.copyOfRange(scores, g * rep, (g + 1) * rep), rep - remove);
      for (int k : keep) {
        kept.add(g * rep + k);
      }
    }
    int[] keptKv = new int[kvHeads];
    Arrays.setAll(keptKv, g -> g);
    return new HeadPlan(kept.stream().mapToInt(Integer::intValue).toArray(), keptKv);
  }

  /** The indices of the {@code keep} highest scores, ascending; ties keep the lower index. */
  public static int[] keepHighest(double[] scores, int keep) {
    if (keep < 1 || keep > scores.length) {
      throw new IllegalArgumentException("cannot keep " + keep + " of " + scores.length);
    }
    Integer[] order = new Integer[scores.length];
    Arrays.setAll(order, i -> i);
    Arrays.sort(
        order,
        Comparator.comparingDouble((Integer i) -> -scores[i]).thenComparingInt(Integer::intValue));
    int[] out = new int[keep];
    for (int i = 0; i < keep; i++) {
      out[i] = order[i];
    }
    Arrays.sort(out);
    return out;
  }

  /** The old indices in {@code 0..total-1} not in {@code kept} (ascending). */
  public static int[] removed(int[] kept, int total) {
    boolean[] k = new boolean[total];
    for (int i : kept) {
      k[i] = true;
    }
    int[] out = new int[total - kept.length];
    int n = 0;
    for (int i = 0; i < total; i++) {
      if (!k[i]) {
        out[n++] = i;
      }
    }
    return out;
  }
}
