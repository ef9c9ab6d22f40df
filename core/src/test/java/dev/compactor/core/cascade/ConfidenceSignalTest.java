package dev.compactor.core.cascade;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.cascade.ConfidenceSignal.Signals;
import org.junit.jupiter.api.Test;

/** The three signals and their routing decisions on constructed logits with known answers. */
class ConfidenceSignalTest {

  /** Logits ln(0.7), ln(0.2), ln(0.1) plus a constant (softmax ignores it), at an offset. */
  private static final float[] ROW = {
    9f, 9f, (float) (Math.log(0.2) + 3), (float) (Math.log(0.7) + 3), (float) (Math.log(0.1) + 3)
  };

  @Test
  void signalsOfAKnownDistribution() {
    Signals s = Signals.ofLogits(ROW, 2, 3);
    assertEquals(0.7, s.maxProb(), 1e-6);
    assertEquals(0.5, s.margin(), 1e-6);
    // -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1)
    assertEquals(0.8018185525433372, s.entropy(), 1e-6);
  }

  @Test
  void uniformAndPeakedExtremes() {
    Signals u = Signals.ofScores(new double[] {-3, -3, -3, -3});
    assertEquals(0.25, u.maxProb(), 1e-12);
    assertEquals(0, u.margin(), 1e-12);
    assertEquals(Math.log(4), u.entropy(), 1e-12);
    Signals p = Signals.ofScores(new double[] {0, -1000});
    assertEquals(1, p.maxProb(), 1e-12);
    assertEquals(1, p.margin(), 1e-12);
    assertEquals(0, p.entropy(), 1e-12);
  }

  @Test
  void tiedTopTwoHaveNoMargin() {
    Signals s = Signals.ofScores(new double[] {Math.log(0.4), Math.log(0.4), Math.log(0.2)});
    assertEquals(0.4, s.maxProb(), 1e-12);
    assertEquals(0, s.margin(), 1e-12);
  }

  @Test
  void routingDecisions() {
    Signals s = Signals.ofLogits(ROW, 2, 3); // 0.7, 0.5, 0.80 nats
    assertTrue(ConfidenceSignal.MAX_PROB.defers(ConfidenceSignal.MAX_PROB.of(s), 0.8));
    assertFalse(ConfidenceSignal.MAX_PROB.defers(ConfidenceSignal.MAX_PROB.of(s), 0.6));
    assertTrue(ConfidenceSignal.MARGIN.defers(ConfidenceSignal.MARGIN.of(s), 0.6));
    assertFalse(ConfidenceSignal.MARGIN.defers(ConfidenceSignal.MARGIN.of(s), 0.4));
    // entropy defers when the distribution is flatter than the threshold allows
    assertTrue(ConfidenceSignal.ENTROPY.defers(ConfidenceSignal.ENTROPY.of(s), 0.5));
    assertFalse(ConfidenceSignal.ENTROPY.defers(ConfidenceSignal.ENTROPY.of(s), 1.0));
  }

  @Test
  void leastConfidentTakesTheWorstOfEach() {
    Signals a = new Signals(0.9, 0.1, 0.3);
    Signals b = new Signals(0.6, 0.5, 1.2);
    Signals w = a.leastConfident(b);
    assertEquals(new Signals(0.6, 0.1, 1.2), w);
  }

  @Test
  void namesParseAndUnknownOnesAreRefused() {
    assertEquals(ConfidenceSignal.ENTROPY, ConfidenceSignal.of(" Entropy"));
    assertEquals(ConfidenceSignal.MAX_PROB, ConfidenceSignal.of("maxprob"));
    assertThrows(IllegalArgumentException.class, () -> ConfidenceSignal.of("logit"));
    assertThrows(IllegalArgumentException.class, () -> Signals.ofScores(new double[] {1}));
  }
}
