package dev.compactor.core.cascade;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Generation;
import dev.compactor.core.model.GenerationSettings;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.DeepReferenceModel;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A real cascade: tiny-llama-v1 (small) in front of deep-llama-v1 (large), both byte-level with the
 * same tokenizer, on held-out Europarl text.
 */
class CascadeTinyModelTest {

  /** Parliament-style English written for this test (neither model was trained on it). */
  private static final String[] TEXT = {
    "Madam President, the Commission has presented its proposal on the protection of workers",
    "and I would like to thank the rapporteur for the work she has done in the committee.",
    "We must ensure that the Member States apply the directive in full and without delay,",
    "because the citizens of Europe expect the Union to act on employment and on the",
    "environment. The Council has not yet given its position, and this Parliament cannot",
    "accept a common position that weakens the rights of consumers. I therefore ask the",
    "Commissioner to tell us when the report on the internal market will be published and",
    "whether the amendments adopted by our group will be taken into account. Thank you."
  };

  private static Transformer small;
  private static Transformer large;
  private static ModelFlops smallFlops;
  private static ModelFlops largeFlops;

  @BeforeAll
  static void load() throws Exception {
    Path s = TinyReferenceModel.shipped();
    Path l = DeepReferenceModel.shipped();
    small = Transformer.load(s, Device.cpu());
    large = Transformer.load(l, Device.cpu());
    smallFlops = ModelFlops.of(ModelConfig.read(s));
    largeFlops = ModelFlops.of(ModelConfig.read(l));
  }

  @AfterAll
  static void close() {
    small.close();
    large.close();
  }

  @Test
  void tokenCurveRunsFromTheSmallModelToTheLargeOne() throws Exception {
    String text = String.join(" ", TEXT);
    int[] tokens = new ByteTokenizer().encodeWithBos(text);
    List<Outcome> o =
        CascadeRecords.tokens(
            small, large, smallFlops, largeFlops, tokens, 128, 4, ProgressListener.NONE);
    assertEquals(4 * 128, o.size());
    double[] t = RoutingCurve.quantileThresholds(o, ConfidenceSignal.MAX_PROB, 4);
    RoutingCurve c =
        RoutingCurve.compute(
            o, Granularity.TOKEN, QualityMetric.NLL, ConfidenceSignal.MAX_PROB, t, "test");
    // the larger model predicts held-out text better, the curve's ends are the two models
    assertTrue(c.largeAlone().quality() < c.smallAlone().quality(), c.toString());
    assertEquals(c.smallAlone().quality(), c.points().get(0).quality(), 1e-12);
    RoutingCurve.Point all = c.points().get(c.points().size() - 1);
    assertEquals(1, all.fractionRouted(), 1e-12);
    assertEquals(c.largeAlone().quality(), all.quality(), 1e-12);
    for (int i = 1; i < c.points().size(); i++) {
      assertTrue(c.points().get(i).fractionRouted() >= c.points().get(i - 1).fractionRouted());
    }
    // deferring the small model's least confident quarter of tokens lowers the NLL, while the
    // large model's cache catches up over (nearly) every token before the last deferred one
    RoutingCurve.Point quarter = c.points().get(1);
    assertTrue(quarter.quality() < c.smallAlone().quality(), quarter.toString());
    assertTrue(quarter.largeWorkFraction() > quarter.fractionRouted(), quarter.toString());
    // the same windows as requests: a deferred window costs exactly the large model's pass on it
    List<Outcome> windows = CascadeRecords.windows(o);
    assertEquals(4, windows.size());
    RoutingCurve r =
        RoutingCurve.compute(
            windows,
            Granularity.REQUEST,
            QualityMetric.NLL,
            ConfidenceSignal.MAX_PROB,
            RoutingCurve.quantileThresholds(windows, ConfidenceSignal.MAX_PROB, 4),
            "test");
    assertEquals(c.smallAlone().quality(), r.smallAlone().quality(), 1e-12);
    assertEquals(c.largeAlone().flops() * 128, r.largeAlone().flops(), 1e-3);
    RoutingCurve.Point half = r.points().get(2);
    assertEquals(0.5, half.fractionRouted(), 1e-12);
    assertEquals(r.smallAlone().costFraction() + 0.5, half.costFraction(), 1e-12);
    // next-token requests: a window's last token, at the price of each model's prefill of it
    List<Outcome> next = CascadeRecords.nextTokenRequests(o);
    assertEquals(4, next.size());
    assertEquals(o.get(2 * 128 - 1).smallQuality(), next.get(1).smallQuality(), 0);
    assertEquals(o.get(2 * 128 - 1).small(), next.get(1).small());
    assertEquals(largeFlops.span(0, 128), next.get(3).largeFlops(), 1e-3);
    // the NLL of a token is the independent softmax cross-entropy of its logits
    double nll = 0;
    for (Outcome x : o) {
      nll += x.smallQuality();
    }
    assertEquals(nll / o.size(), c.smallAlone().quality(), 1e-12);
    // shapes: the small model costs about a sixth of the large one per token
    double ratio = c.smallAlone().flops() / c.largeAlone().flops();
    assertTrue(ratio > 0.1 && ratio < 0.25, "small/large FLOPs " + ratio);
  }

  @Test
  void greedyCascadeEndsAreTheTwoModelsOwnGreedyText() {
    int[] prompt = new ByteTokenizer().encodeWithBos("The Commission has");
    int n = 12;
    int[] s = Generation.generate(small, prompt, n, GenerationSettings.greedy());
    int[] l = Generation.generate(large, prompt, n, GenerationSettings.greedy());
    GreedyCascade.Result never =
        GreedyCascade.generate(
            small, large, smallFlops, largeFlops, prompt, n, ConfidenceSignal.MAX_PROB, 0);
    assertArrayEquals(s, never.tokens());
    assertEquals(0, never.largeFlops());
    assertEquals(smallFlops.span(0, prompt.length + n - 1), never.smallFlops());
    GreedyCascade.Result always =
        GreedyCascade.generate(
            small, large, smallFlops, largeFlops, prompt, n, ConfidenceSignal.MAX_PROB, 2);
    assertArrayEquals(l, always.tokens());
    assertEquals(n, always.deferred());
    assertEquals(prompt.length + n - 1, always.largePositions());
    assertEquals(largeFlops.span(0, prompt.length + n - 1), always.largeFlops());
  }
}
