package dev.compactor.core.frontier;

import static dev.compactor.core.frontier.ParetoFrontierTest.PPL;
import static dev.compactor.core.frontier.ParetoFrontierTest.SIZE;
import static dev.compactor.core.frontier.ParetoFrontierTest.TOP1;
import static dev.compactor.core.frontier.ParetoFrontierTest.p;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SmallestWithinTest {

  @Test
  void smallestWithinFivePercentOfTheBestPerplexity() {
    List<FrontierPoint> pts =
        List.of(
            p("best", "size", 100, "ppl", 10.0),
            p("close", "size", 60, "ppl", 10.5), // exactly at the bound: eligible
            p("closeButBig", "size", 80, "ppl", 10.2),
            p("tooFar", "size", 20, "ppl", 10.6));
    SmallestWithin.Selection s = SmallestWithin.select(pts, SIZE, PPL, 0.05).orElseThrow();
    assertEquals("close", s.chosen().label());
    assertEquals("best", s.best().label());
    assertEquals(10.5, s.bound(), 1e-12);
    assertEquals(
        List.of("close", "closeButBig", "best"),
        s.eligible().stream().map(FrontierPoint::label).toList());
    // within 0: only the best
    assertEquals("best", SmallestWithin.select(pts, SIZE, PPL, 0).orElseThrow().chosen().label());
  }

  @Test
  void maximisedQualityBoundIsBelowTheBest() {
    List<FrontierPoint> pts =
        List.of(
            p("a", "size", 10, "top1", 0.90),
            p("b", "size", 5, "top1", 0.81),
            p("c", "size", 4, "top1", 0.80));
    SmallestWithin.Selection s = SmallestWithin.select(pts, SIZE, TOP1, 0.1).orElseThrow();
    assertEquals(0.81, s.bound(), 1e-12);
    assertEquals("b", s.chosen().label());
  }

  @Test
  void equalSizesPreferTheBetterQualityAndMissingValuesAreSkipped() {
    List<FrontierPoint> pts =
        List.of(
            p("worse", "size", 5, "ppl", 10.4),
            p("better", "size", 5, "ppl", 10.1),
            p("noSize", "ppl", 1.0),
            p("noPpl", "size", 1),
            p("best", "size", 9, "ppl", 10.0));
    SmallestWithin.Selection s = SmallestWithin.select(pts, SIZE, PPL, 0.05).orElseThrow();
    assertEquals("better", s.chosen().label());
    assertEquals(List.of("noSize", "noPpl"), s.skipped());
    assertTrue(SmallestWithin.select(List.of(p("x", "size", 1)), SIZE, PPL, 0.05).isEmpty());
  }

  @Test
  void theChoiceIsAlwaysOnTheSizeQualityFrontier() {
    Random r = new Random(5);
    for (int round = 0; round < 200; round++) {
      List<FrontierPoint> pts = new ArrayList<>();
      for (int i = 0; i < 12; i++) {
        pts.add(p("p" + i, "size", r.nextInt(6), "ppl", 10 + r.nextInt(6) * 0.2));
      }
      SmallestWithin.Selection s = SmallestWithin.select(pts, SIZE, PPL, 0.03).orElseThrow();
      assertTrue(
          ParetoFrontier.of(pts, List.of(SIZE, PPL)).isOnFrontier(s.chosen().label()),
          s.toString());
      for (FrontierPoint e : pts) {
        if (e.value("ppl") <= s.bound()) {
          assertTrue(e.value("size") >= s.chosen().value("size"));
        }
      }
    }
  }

  @Test
  void refusesANegativeFractionAndAMaximisedSize() {
    List<FrontierPoint> pts = List.of(p("a", "size", 1, "ppl", 2));
    assertThrows(IllegalArgumentException.class, () -> SmallestWithin.select(pts, SIZE, PPL, -1));
    assertThrows(
        IllegalArgumentException.class,
        () -> SmallestWithin.select(pts, Objective.maximize("size", null), PPL, 0.1));
  }
}
