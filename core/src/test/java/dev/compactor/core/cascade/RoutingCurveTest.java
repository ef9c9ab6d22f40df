package dev.compactor.core.cascade;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.cascade.ConfidenceSignal.Signals;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Routing curves, cost accounting and threshold selection on constructed outcomes. */
class RoutingCurveTest {

  private static Outcome request(int i, double maxProb, double small, double large) {
    return new Outcome(i, new Signals(maxProb, maxProb, 1 - maxProb), small, large, 1, 10, 0.1, 1);
  }

  /** Four requests: the small model is wrong exactly where it is unsure. */
  private static final List<Outcome> REQUESTS =
      List.of(
          request(0, 0.9, 1, 1),
          request(1, 0.3, 0, 1),
          request(2, 0.6, 1, 0),
          request(3, 0.2, 0, 1));

  @Test
  void perRequestQualityRoutedShareAndCost() {
    RoutingCurve c =
        RoutingCurve.compute(
            REQUESTS,
            Granularity.REQUEST,
            QualityMetric.ACCURACY,
            ConfidenceSignal.MAX_PROB,
            new double[] {0.25, 0.5, 0.7, 1.0},
            "constructed");
    assertEquals(0.5, c.smallAlone().quality(), 1e-12);
    assertEquals(0.75, c.largeAlone().quality(), 1e-12);
    assertEquals(10, c.largeAlone().flops(), 1e-12);
    // threshold 0.25 defers request 3 only: right answers 1, -, 1, 1 = 3 of 4
    RoutingCurve.Point p = c.points().get(0);
    assertEquals(0.25, p.fractionRouted(), 1e-12);
    assertEquals(0.75, p.quality(), 1e-12);
    assertEquals(1.0, p.qualityRatio(), 1e-12);
    assertEquals((4 * 1 + 10) / 4.0, p.flops(), 1e-12);
    assertEquals(0.35, p.costFraction(), 1e-12);
    assertEquals((4 * 0.1 + 1) / 4, p.seconds(), 1e-12);
    // routing a quarter at random: 0.75 * 0.5 + 0.25 * 0.75; confidence did better
    assertEquals(0.5625, p.randomQuality(), 1e-12);
    // 0.5 defers 1 and 3: 1, 1, 1, 1
    assertEquals(1.0, c.points().get(1).quality(), 1e-12);
    assertEquals(0.5, c.points().get(1).fractionRouted(), 1e-12);
    // 0.7 also defers 2, which the large model gets wrong
    assertEquals(0.75, c.points().get(2).quality(), 1e-12);
    // 1.0 defers everything: the large model's quality at more than its cost
    RoutingCurve.Point all = c.points().get(3);
    assertEquals(0.75, all.quality(), 1e-12);
    assertEquals(1.1, all.costFraction(), 1e-12);
  }

  @Test
  void selectionTakesTheCheapestPointMeetingTheTarget() {
    RoutingCurve c =
        RoutingCurve.compute(
            REQUESTS,
            Granularity.REQUEST,
            QualityMetric.ACCURACY,
            ConfidenceSignal.MAX_PROB,
            new double[] {1.0, 0.7, 0.5, 0.25},
            "constructed");
    assertEquals(0.25, c.select(1.0).orElseThrow().threshold(), 1e-12);
    assertEquals(0.5, c.select(1.2).orElseThrow().threshold(), 1e-12); // 1.0 / 0.75
    assertTrue(c.select(1.5).isEmpty());
    // the small model alone (ratio 2/3) meets a low target: never defer
    RoutingPolicy policy = RoutingPolicy.choose(c, 0.6).orElseThrow();
    assertNull(policy.threshold());
    assertEquals(0, policy.point().fractionRouted(), 1e-12);
    assertEquals(
        "never (the small model alone meets the target)",
        policy.toJson().get("defer_when").asText());
    RoutingPolicy p = RoutingPolicy.choose(c, 1.0).orElseThrow();
    assertEquals(0.25, p.toJson().get("threshold").asDouble(), 1e-12);
    assertEquals("maxprob < threshold", p.toJson().get("defer_when").asText());
    assertEquals(0.35, p.toJson().get("expected_cost_fraction").asDouble(), 1e-12);
  }

  /**
   * Per token the large model's cache catches up to the last deferred token of each sequence: a
   * sequence of 4 tokens deferring only its third costs the large model tokens 1 to 3.
   */
  @Test
  void perTokenCostCountsTheLargeModelsCatchUp() {
    ModelFlops large = new ModelFlops(100, 10);
    ModelFlops small = new ModelFlops(10, 1);
    double[] conf = {0.9, 0.8, 0.1, 0.9, /* second sequence */ 0.95, 0.99};
    List<Outcome> tokens = new java.util.ArrayList<>();
    for (int i = 0; i < conf.length; i++) {
      int group = i < 4 ? 0 : 1;
      int pos = i < 4 ? i : i - 4;
      tokens.add(
          new Outcome(
              group,
              new Signals(conf[i], conf[i], 0),
              2.0,
              1.0,
              small.token(pos),
              large.token(pos),
              0,
              0));
    }
    RoutingCurve c =
        RoutingCurve.compute(
            tokens,
            Granularity.TOKEN,
            QualityMetric.NLL,
            ConfidenceSignal.MAX_PROB,
            new double[] {0.5},
            "constructed");
    RoutingCurve.Point p = c.points().get(0);
    assertEquals(1.0 / 6, p.fractionRouted(), 1e-12);
    assertEquals(3.0 / 6, p.largeWorkFraction(), 1e-12);
    double smallAll = small.span(0, 4) + small.span(0, 2);
    double largeCatchUp = large.span(0, 3);
    assertEquals((smallAll + largeCatchUp) / 6, p.flops(), 1e-9);
    assertEquals((large.span(0, 4) + large.span(0, 2)) / 6.0, c.largeAlone().flops(), 1e-9);
    // NLL 5 * 2 + 1 over 6 tokens; ratio = large / cascade
    assertEquals(11.0 / 6, p.quality(), 1e-12);
    assertEquals(1.0 / (11.0 / 6), p.qualityRatio(), 1e-12);
  }

  @Test
  void quantileThresholdsRouteEvenShares() {
    List<Outcome> o =
        List.of(
            request(0, 0.1, 0, 0),
            request(1, 0.2, 0, 0),
            request(2, 0.3, 0, 0),
            request(3, 0.4, 0, 0));
    double[] t = RoutingCurve.quantileThresholds(o, ConfidenceSignal.MAX_PROB, 4);
    assertArrayEquals(new double[] {0.1, 0.2, 0.3, 0.4, Math.nextUp(0.4)}, t, 0);
    RoutingCurve c =
        RoutingCurve.compute(
            o, Granularity.REQUEST, QualityMetric.ACCURACY, ConfidenceSignal.MAX_PROB, t, "c");
    for (int i = 0; i < t.length; i++) {
      assertEquals(i / 4.0, c.points().get(i).fractionRouted(), 1e-12);
    }
    // entropy of these outcomes is 1 - maxProb: the flattest go first
    double[] e = RoutingCurve.quantileThresholds(o, ConfidenceSignal.ENTROPY, 2);
    RoutingCurve ce =
        RoutingCurve.compute(
            o, Granularity.REQUEST, QualityMetric.ACCURACY, ConfidenceSignal.ENTROPY, e, "c");
    assertEquals(0, ce.points().get(0).fractionRouted(), 1e-12);
    assertEquals(0.5, ce.points().get(1).fractionRouted(), 1e-12);
    assertEquals(1, ce.points().get(2).fractionRouted(), 1e-12);
  }
}
