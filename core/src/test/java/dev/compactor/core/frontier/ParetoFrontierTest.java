package dev.compactor.core.frontier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class ParetoFrontierTest {
  static final Objective SIZE = Objective.minimize("size", "size (bytes)");
  static final Objective PPL = Objective.minimize("ppl", "perplexity");
  static final Objective TOP1 = Objective.maximize("top1", "top-1 agreement");

  static FrontierPoint p(String label, Object... kv) {
    Map<String, Double> m = new HashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1] == null ? null : ((Number) kv[i + 1]).doubleValue());
    }
    return new FrontierPoint(label, m);
  }

  static Set<String> frontierLabels(ParetoFrontier f) {
    return f.frontier().stream().map(FrontierPoint::label).collect(Collectors.toSet());
  }

  @Test
  void knownTwoObjectiveFrontier() {
    List<FrontierPoint> pts =
        List.of(
            p("a", "size", 1, "ppl", 5),
            p("b", "size", 2, "ppl", 3),
            p("c", "size", 3, "ppl", 4), // b is smaller and better
            p("d", "size", 4, "ppl", 1),
            p("e", "size", 5, "ppl", 1)); // same quality as d, larger
    ParetoFrontier f = ParetoFrontier.of(pts, List.of(SIZE, PPL));
    assertEquals(List.of("a", "b", "d"), f.frontier().stream().map(FrontierPoint::label).toList());
    assertEquals("b", f.ranked().get(2).dominatedBy());
    assertEquals("d", f.ranked().get(4).dominatedBy());
    assertEquals(ParetoFrontier.Status.DOMINATED, f.ranked().get(4).status());
    assertTrue(f.isOnFrontier("a"));
    assertFalse(f.isOnFrontier("c"));
  }

  @Test
  void maximisedObjectiveTurnsTheOrderAround() {
    List<FrontierPoint> pts =
        List.of(
            p("small-bad", "size", 1, "top1", 0.5),
            p("big-good", "size", 3, "top1", 0.9),
            p("big-worse", "size", 3, "top1", 0.8),
            p("mid", "size", 2, "top1", 0.7));
    ParetoFrontier f = ParetoFrontier.of(pts, List.of(SIZE, TOP1));
    assertEquals(Set.of("small-bad", "big-good", "mid"), frontierLabels(f));
    assertEquals("big-good", f.ranked().get(2).dominatedBy());
  }

  @Test
  void equalPointsAreAllOnTheFrontier() {
    List<FrontierPoint> pts =
        List.of(
            p("twin1", "size", 2, "ppl", 2),
            p("twin2", "size", 2, "ppl", 2),
            p("worse", "size", 2, "ppl", 2.5),
            p("tieOnSize", "size", 1, "ppl", 3));
    ParetoFrontier f = ParetoFrontier.of(pts, List.of(SIZE, PPL));
    assertEquals(Set.of("twin1", "twin2", "tieOnSize"), frontierLabels(f));
    assertEquals("twin1", f.ranked().get(2).dominatedBy());
    // the frontier is ordered by size, ties by label
    assertEquals(
        List.of("tieOnSize", "twin1", "twin2"),
        f.frontier().stream().map(FrontierPoint::label).toList());
  }

  @Test
  void aPointMissingAnObjectiveIsNeitherRankedNorDominating() {
    List<FrontierPoint> pts =
        List.of(
            p("noPpl", "size", 0.5, "ppl", null), // would dominate everything on size alone
            p("nanPpl", "size", 0.1, "ppl", Double.NaN),
            p("a", "size", 1, "ppl", 5),
            p("b", "size", 2, "ppl", 3));
    ParetoFrontier f = ParetoFrontier.of(pts, List.of(SIZE, PPL));
    assertEquals(Set.of("a", "b"), frontierLabels(f));
    assertEquals(ParetoFrontier.Status.INCOMPLETE, f.ranked().get(0).status());
    assertEquals(List.of("ppl"), f.ranked().get(0).missing());
    assertEquals(ParetoFrontier.Status.INCOMPLETE, f.ranked().get(1).status());
    assertNull(f.ranked().get(2).dominatedBy());
  }

  @Test
  void threeObjectives() {
    List<FrontierPoint> pts =
        List.of(
            p("a", "size", 1, "ppl", 3, "top1", 0.6),
            p("b", "size", 1, "ppl", 3, "top1", 0.7), // dominates a on top1 only
            p("c", "size", 2, "ppl", 2, "top1", 0.5), // better ppl: on the frontier
            p("d", "size", 2, "ppl", 2.5, "top1", 0.4)); // c is better on all
    ParetoFrontier f = ParetoFrontier.of(pts, List.of(SIZE, PPL, TOP1));
    assertEquals(Set.of("b", "c"), frontierLabels(f));
  }

  /** Against the textbook 2-D algorithm: sort by x, keep each point strictly better in y. */
  @Test
  void matchesTheSortAndScanAlgorithmOnRandomPoints() {
    Random r = new Random(12);
    for (int round = 0; round < 50; round++) {
      List<FrontierPoint> pts = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        // few distinct values, so ties on one or both axes are common
        pts.add(p("p" + i, "size", r.nextInt(8), "ppl", r.nextInt(8)));
      }
      Set<String> expected = new HashSet<>();
      List<FrontierPoint> sorted =
          pts.stream()
              .sorted(
                  Comparator.<FrontierPoint>comparingDouble(q -> q.value("size"))
                      .thenComparingDouble(q -> q.value("ppl")))
              .toList();
      double bestPpl = Double.POSITIVE_INFINITY;
      for (int i = 0; i < sorted.size(); ) {
        // one size at a time: its smallest ppl (and every point equal to it) survives if it beats
        // every smaller size
        int j = i;
        double sz = sorted.get(i).value("size");
        double minHere = sorted.get(i).value("ppl");
        while (j < sorted.size() && sorted.get(j).value("size") == sz) {
          if (minHere < bestPpl && sorted.get(j).value("ppl") == minHere) {
            expected.add(sorted.get(j).label());
          }
          j++;
        }
        bestPpl = Math.min(bestPpl, minHere);
        i = j;
      }
      assertEquals(expected, frontierLabels(ParetoFrontier.of(pts, List.of(SIZE, PPL))));
    }
  }

  @Test
  void refusesNoObjectivesAndDuplicates() {
    assertThrows(IllegalArgumentException.class, () -> ParetoFrontier.of(List.of(), List.of()));
    assertThrows(
        IllegalArgumentException.class, () -> ParetoFrontier.of(List.of(), List.of(SIZE, SIZE)));
  }
}
