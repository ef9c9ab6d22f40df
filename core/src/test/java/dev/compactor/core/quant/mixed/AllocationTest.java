package dev.compactor.core.quant.mixed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.quant.mixed.Allocation.Option;
import dev.compactor.core.quant.mixed.Allocation.Plan;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AllocationTest {

  @Test
  void matchesBruteForceOnRandomInstances() {
    Random rnd = new Random(12);
    for (int trial = 0; trial < 500; trial++) {
      int linears = 1 + rnd.nextInt(6);
      List<List<Option>> options = new ArrayList<>();
      long min = 0;
      long max = 0;
      for (int i = 0; i < linears; i++) {
        int k = 1 + rnd.nextInt(3);
        List<Option> l = new ArrayList<>();
        for (int o = 0; o < k; o++) {
          // small byte values so that equal totals (ties) occur often
          l.add(new Option("o" + o, 1 + rnd.nextInt(20), rnd.nextInt(50) / 10.0));
        }
        options.add(l);
        min += l.stream().mapToLong(Option::bytes).min().getAsLong();
        max += l.stream().mapToLong(Option::bytes).max().getAsLong();
      }
      long budget = min + (long) (rnd.nextDouble() * (max - min + 1));
      Plan plan = Allocation.solve(options, budget);
      double best = bruteForce(options, budget, 0, 0, 0);
      assertEquals(best, plan.sensitivity(), 1e-9, "trial " + trial);
      long bytes = 0;
      double sens = 0;
      for (int i = 0; i < linears; i++) {
        bytes += options.get(i).get(plan.choice()[i]).bytes();
        sens += options.get(i).get(plan.choice()[i]).sensitivity();
      }
      assertEquals(bytes, plan.bytes(), "trial " + trial);
      assertEquals(sens, plan.sensitivity(), 1e-9, "trial " + trial);
      assertTrue(bytes <= budget, "trial " + trial);
    }
  }

  @Test
  void spendsTheBudgetWhereItHelpsMost() {
    // linear a loses much at 4 bits, b little: the one 8-bit slot goes to a
    List<List<Option>> options =
        List.of(
            List.of(new Option("int8", 100, 0.01), new Option("int4", 50, 1.0)),
            List.of(new Option("int8", 100, 0.01), new Option("int4", 50, 0.1)));
    Plan plan = Allocation.solve(options, 150);
    assertArrayEquals(new int[] {0, 1}, plan.choice());
    assertEquals(150, plan.bytes());
  }

  @Test
  void refusesAnInfeasibleBudget() {
    List<List<Option>> options =
        List.of(List.of(new Option("int4", 50, 1)), List.of(new Option("int4", 60, 1)));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Allocation.solve(options, 109));
    assertTrue(e.getMessage().contains("infeasible"), e.getMessage());
    assertEquals(110, Allocation.solve(options, 110).bytes());
  }

  private static double bruteForce(
      List<List<Option>> options, long budget, int i, long bytes, double sens) {
    if (bytes > budget) {
      return Double.POSITIVE_INFINITY;
    }
    if (i == options.size()) {
      return sens;
    }
    double best = Double.POSITIVE_INFINITY;
    for (Option o : options.get(i)) {
      best =
          Math.min(
              best, bruteForce(options, budget, i + 1, bytes + o.bytes(), sens + o.sensitivity()));
    }
    return best;
  }
}
