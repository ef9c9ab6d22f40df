package dev.compactor.core.frontier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * The proposer on a constructed problem: a 6x6 grid (a "sparsity" 0..0.5 and "bits" 2..8) with a
 * synthetic size and quality; the goal is the smallest size whose quality is within the bound.
 */
class BayesianProposerTest {

  static final double[] SPARSITY = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5};
  static final int[] BITS = {2, 3, 4, 5, 6, 8};
  static final double BOUND = 4.6;

  static final List<SweepSpec.Parameter> PARAMS =
      List.of(
          new SweepSpec.Parameter("a", list(SPARSITY)),
          new SweepSpec.Parameter(
              "b",
              java.util.Arrays.stream(BITS).mapToObj(i -> (JsonNode) IntNode.valueOf(i)).toList()));

  static List<JsonNode> list(double[] v) {
    return java.util.Arrays.stream(v).mapToObj(d -> (JsonNode) DoubleNode.valueOf(d)).toList();
  }

  static double size(SweepSpec.Point p) {
    double a = p.assignment().get("a").asDouble();
    double b = p.assignment().get("b").asDouble();
    return 1e6 * (1 - a) * b / 8;
  }

  static double quality(SweepSpec.Point p) {
    double a = p.assignment().get("a").asDouble();
    double b = p.assignment().get("b").asDouble();
    return 4 + 6 * a * a + 4 / (b * b);
  }

  static List<SweepSpec.Point> grid() {
    List<SweepSpec.Point> out = new ArrayList<>();
    for (int i = 0; i < SPARSITY.length; i++) {
      for (int j = 0; j < BITS.length; j++) {
        Map<String, JsonNode> as = new LinkedHashMap<>();
        as.put("a", DoubleNode.valueOf(SPARSITY[i]));
        as.put("b", IntNode.valueOf(BITS[j]));
        int index = i * BITS.length + j;
        out.add(new SweepSpec.Point(index, "p" + index, as, "", "", List.of()));
      }
    }
    return out;
  }

  /** The true optimum: smallest size with quality within the bound. */
  static SweepSpec.Point optimum(List<SweepSpec.Point> grid) {
    return grid.stream()
        .filter(p -> quality(p) <= BOUND)
        .min(java.util.Comparator.comparingDouble(BayesianProposerTest::size))
        .orElseThrow();
  }

  /**
   * Runs a proposer to its end with {@code parallel} jobs in flight, the oldest ending first;
   * points matching {@code fails} end without an evaluation. Returns the picks in order.
   */
  static List<SweepProposer.Pick> run(
      SweepProposer proposer, int parallel, Predicate<SweepSpec.Point> fails) {
    List<SweepProposer.Pick> picks = new ArrayList<>();
    Deque<SweepSpec.Point> running = new ArrayDeque<>();
    while (true) {
      if (running.size() < parallel) {
        Optional<SweepProposer.Pick> next = proposer.next();
        if (next.isPresent()) {
          picks.add(next.get());
          running.add(next.get().point());
          continue;
        }
      }
      if (running.isEmpty()) {
        return picks;
      }
      SweepSpec.Point done = running.poll();
      if (fails.test(done)) {
        proposer.failed(done);
      } else {
        proposer.evaluated(done, size(done), quality(done), BOUND);
      }
    }
  }

  static BayesianProposer bayesian(int budget, int parallel, long seed) {
    return new BayesianProposer(
        grid(), new SearchSpace(PARAMS), budget, Math.min(budget, Math.max(2, parallel)), seed);
  }

  /** Whether the best feasible point among those run is the true optimum. */
  static boolean found(List<SweepSpec.Point> run) {
    SweepSpec.Point best =
        run.stream()
            .filter(p -> quality(p) <= BOUND)
            .min(java.util.Comparator.comparingDouble(BayesianProposerTest::size))
            .orElse(null);
    return best != null && best.index() == optimum(grid()).index();
  }

  /** Random mode's pick with the same seed: SweepSpec's shuffle of the grid. */
  static List<SweepSpec.Point> random(int budget, long seed) {
    List<SweepSpec.Point> g = new ArrayList<>(grid());
    Collections.shuffle(g, new Random(seed));
    return g.subList(0, budget);
  }

  @Test
  void theProblemHasOneOptimumBesideSmallerInfeasiblePoints() {
    SweepSpec.Point o = optimum(grid());
    assertEquals(0.1, o.assignment().get("a").asDouble(), 0);
    assertEquals(3, o.assignment().get("b").asInt());
    // 14 of 36 feasible; smaller infeasible points exist, so the constraint matters
    assertEquals(14, grid().stream().filter(p -> quality(p) <= BOUND).count());
    assertTrue(grid().stream().anyMatch(p -> size(p) < size(o) && quality(p) > BOUND));
  }

  @Test
  void findsTheConstrainedOptimumMoreOftenThanRandomSearchWithTheSameBudgetAndSeeds() {
    int budget = 10;
    for (int parallel : new int[] {1, 3}) {
      int bayes = 0;
      int rand = 0;
      StringBuilder log = new StringBuilder();
      for (long seed = 1; seed <= 20; seed++) {
        List<SweepSpec.Point> b =
            run(bayesian(budget, parallel, seed), parallel, p -> false).stream()
                .map(SweepProposer.Pick::point)
                .toList();
        assertEquals(budget, b.size());
        assertEquals(budget, new HashSet<>(b).size(), "a point picked twice");
        boolean fb = found(b);
        boolean fr = found(random(budget, seed));
        bayes += fb ? 1 : 0;
        rand += fr ? 1 : 0;
        log.append(seed).append(fb ? "B" : "-").append(fr ? "R " : "- ");
      }
      // fixed seeds, so deterministic: measured 20/20 (parallel 1) and 16/20 (parallel 3)
      // against 5/20 for random search
      assertTrue(
          bayes >= 15 && rand <= 6 && bayes >= rand + 9,
          "parallel " + parallel + ": bayesian " + bayes + "/20, random " + rand + "/20: " + log);
    }
  }

  @Test
  void startsWithSeededRandomPointsThenPredictsAndStopsAtTheBudget() {
    List<SweepProposer.Pick> picks = run(bayesian(8, 3, 5), 3, p -> false);
    assertEquals(8, picks.size());
    for (int i = 0; i < picks.size(); i++) {
      if (i < 3) {
        assertNull(picks.get(i).prediction(), "pick " + i);
      } else {
        SweepProposer.Prediction pr = picks.get(i).prediction();
        assertNotNull(pr, "pick " + i);
        assertTrue(
            pr.acquisition() >= 0 && pr.feasible() >= 0 && pr.feasible() <= 1, pr.toString());
        assertTrue(pr.sizeBytes() > 0 && pr.sdLogSize() >= 0, pr.toString());
      }
    }
    // the random start is the seed's shuffle
    List<SweepSpec.Point> g = new ArrayList<>(grid());
    Collections.shuffle(g, new Random(5));
    assertEquals(
        g.subList(0, 3), picks.subList(0, 3).stream().map(SweepProposer.Pick::point).toList());
    // same seed, same picks
    assertEquals(
        picks.stream().map(p -> p.point().index()).toList(),
        run(bayesian(8, 3, 5), 3, p -> false).stream().map(p -> p.point().index()).toList());
  }

  @Test
  void failedPointsCountAgainstTheBudgetAndAreNotProposedAgain() {
    Set<Integer> failed = new HashSet<>();
    List<SweepProposer.Pick> picks =
        run(
            bayesian(12, 1, 2),
            1,
            p -> {
              boolean f = p.assignment().get("b").asInt() == 3;
              if (f) {
                failed.add(p.index());
              }
              return f;
            });
    assertEquals(12, picks.size());
    assertEquals(12, picks.stream().map(p -> p.point().index()).distinct().count());
    // the failing column was reached, and failures did not stop the model-driven picks
    assertTrue(!failed.isEmpty(), "no pick had bits 3");
    assertTrue(picks.stream().skip(2).allMatch(p -> p.prediction() != null));
  }

  @Test
  void aBudgetAboveTheGridRunsEveryPointOnce() {
    List<SweepProposer.Pick> picks = run(bayesian(50, 2, 1), 2, p -> false);
    assertEquals(36, picks.size());
    assertEquals(36, picks.stream().map(p -> p.point().index()).distinct().count());
  }

  @Test
  void nothingEvaluatedYetMeansMoreSeededRandomPoints() {
    // every job fails: the proposer has nothing to fit and keeps to the seed's shuffle
    List<SweepProposer.Pick> picks = run(bayesian(6, 1, 9), 1, p -> true);
    assertEquals(6, picks.size());
    assertTrue(picks.stream().allMatch(p -> p.prediction() == null));
  }

  @Test
  void numbersAreScaledAndOtherValuesOneHot() {
    SearchSpace s =
        new SearchSpace(
            List.of(
                new SweepSpec.Parameter("c", list(new double[] {0.125, 0.25, 0.5})),
                new SweepSpec.Parameter(
                    "m",
                    List.of(
                        TextNode.valueOf("rtn"),
                        TextNode.valueOf("gptq"),
                        TextNode.valueOf("awq"))),
                new SweepSpec.Parameter("k", List.of(IntNode.valueOf(7)))));
    assertEquals(5, s.dimensions());
    Map<String, JsonNode> as = new LinkedHashMap<>();
    as.put("c", DoubleNode.valueOf(0.25));
    as.put("m", TextNode.valueOf("awq"));
    as.put("k", IntNode.valueOf(7));
    double[] x = s.encode(as);
    assertEquals(1 / 3.0, x[0], 1e-15);
    assertEquals(List.of(0.0, 0.0, 1.0, 0.0), List.of(x[1], x[2], x[3], x[4]));
  }
}
