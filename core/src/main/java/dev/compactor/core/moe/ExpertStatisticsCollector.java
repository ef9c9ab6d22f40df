package dev.compactor.core.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.core.Linear;
import dev.compactor.core.model.ActivationObserver;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.util.HashMap;
import java.util.Map;

/**
 * Collects {@link ExpertStatistics} from the forward's own activations. At a layer's router the
 * observer sees the router's input; it recomputes the router logits with the router weight (the
 * same linear the forward applies, so the same top-k), the softmax, the top-k choice (largest
 * first, a tie to the lower index, as the forward) and the weights the forward gives them
 * (renormalised over the top k unless Qwen's {@code norm_topk_prob} is false). At expert {@code
 * e}'s down projection it sees the SiLU-gated activations of exactly the tokens routed to {@code
 * e}, in token order; their down projections give {@code ||expert_e(x)||}, weighted by the token's
 * routing weight. A row count that disagrees with the recomputed routing is an error, not a silent
 * mismatch.
 */
public final class ExpertStatisticsCollector implements ActivationObserver {

  /** The fp32 weight {@code [out, in]} of linear {@code linear} of layer {@code layer}. */
  @FunctionalInterface
  public interface WeightLookup {
    NDArray weight(int layer, String linear);
  }

  private final ModelConfig c;
  private final WeightLookup weights;
  private final ExpertStatistics stats;
  private final String router;
  private final Map<String, Integer> downOf = new HashMap<>();
  private int routedLayer = -1;
  private int[] chosen;
  private double[] routing;

  public ExpertStatisticsCollector(ModelConfig c, WeightLookup weights) {
    if (!c.moe()) {
      throw new IllegalArgumentException(c.modelType() + " has no mixture-of-experts layers");
    }
    this.c = c;
    this.weights = weights;
    this.stats = new ExpertStatistics(c.numLayers(), c.numExperts());
    this.router = Layout.router(c);
    for (int e = 0; e < c.numExperts(); e++) {
      downOf.put(Layout.expert(c, e, Layout.ExpertProj.DOWN), e);
    }
  }

  @Override
  public void observe(int layer, String linear, NDArray input) {
    if (linear.equals(router)) {
      route(layer, input);
      return;
    }
    Integer expert = downOf.get(linear);
    if (expert != null) {
      expertOutput(layer, expert, input);
    }
  }

  private void route(int layer, NDArray input) {
    int n = Math.toIntExact(input.getShape().get(0));
    int experts = c.numExperts();
    int k = c.expertsPerToken();
    float[] pr;
    try (NDArray logits = Linear.linear(input, weights.weight(layer, router)).head();
        NDArray probs = logits.softmax(1)) {
      pr = probs.toFloatArray();
    }
    chosen = new int[n * k];
    routing = new double[n * k];
    for (int t = 0; t < n; t++) {
      boolean[] taken = new boolean[experts];
      double sum = 0;
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          if (!taken[e] && (best < 0 || pr[t * experts + e] > pr[t * experts + best])) {
            best = e;
          }
        }
        taken[best] = true;
        chosen[t * k + j] = best;
        sum += pr[t * experts + best];
      }
      // the weight the forward gives the expert's output: renormalised over the top k (Mixtral,
      // Qwen MoE with norm_topk_prob) or the plain softmax probability (Qwen's default)
      double norm = c.normTopkProb() ? sum : 1;
      for (int j = 0; j < k; j++) {
        routing[t * k + j] = pr[t * experts + chosen[t * k + j]] / norm;
      }
    }
    routedLayer = layer;
    stats.addRouting(layer, chosen, pr, n);
  }

  private void expertOutput(int layer, int expert, NDArray act) {
    if (layer != routedLayer) {
      throw new IllegalStateException(
          "expert " + expert + " of layer " + layer + " ran before that layer's router was seen");
    }
    float[] norms;
    try (NDArray out = Linear.linear(act, weights.weight(layer, linear(expert))).head();
        NDArray sq = out.square();
        NDArray sums = sq.sum(new int[] {1});
        NDArray root = sums.sqrt()) {
      norms = root.toFloatArray();
    }
    int row = 0;
    double sum = 0;
    for (int s = 0; s < chosen.length; s++) {
      if (chosen[s] == expert) {
        if (row >= norms.length) {
          throw mismatch(layer, expert, norms.length);
        }
        sum += routing[s] * norms[row++];
      }
    }
    if (row != norms.length) {
      throw mismatch(layer, expert, norms.length);
    }
    stats.addWeightedNorm(layer, expert, sum);
  }

  private String linear(int expert) {
    return Layout.expert(c, expert, Layout.ExpertProj.DOWN);
  }

  private IllegalStateException mismatch(int layer, int expert, int rows) {
    int expected = 0;
    for (int e : chosen) {
      expected += e == expert ? 1 : 0;
    }
    return new IllegalStateException(
        "layer "
            + layer
            + " expert "
            + expert
            + ": the forward ran "
            + rows
            + " tokens through it, the recomputed routing chose it for "
            + expected);
  }

  /** What was collected so far. */
  public ExpertStatistics statistics() {
    return stats;
  }
}
