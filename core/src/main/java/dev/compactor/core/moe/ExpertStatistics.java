package dev.compactor.core.moe;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Per layer and expert of a mixture-of-experts model, what calibration tokens made of it:
 *
 * <ul>
 *   <li>routing frequency: the fraction of tokens whose top-k includes the expert;
 *   <li>mean router weight: the mean over all tokens of the expert's softmax probability over all
 *       experts (before top-k, so an expert that is never chosen still shows how close it came);
 *   <li>router-weighted output norm: the mean over all tokens of {@code w_e(x)·||expert_e(x)||},
 *       with {@code w_e(x)} the renormalised top-k weight the forward scales the expert's output by
 *       (0 when the expert is not in the token's top-k).
 * </ul>
 *
 * Collected with the model's own forward by {@link ExpertStatisticsCollector}.
 */
public final class ExpertStatistics {

  private final int experts;
  private final long[] tokens;
  private final long[][] routed;
  private final double[][] probabilitySum;
  private final double[][] weightedNormSum;

  ExpertStatistics(int layers, int experts) {
    this.experts = experts;
    this.tokens = new long[layers];
    this.routed = new long[layers][experts];
    this.probabilitySum = new double[layers][experts];
    this.weightedNormSum = new double[layers][experts];
  }

  /**
   * Statistics of {@code sequences} (each run as one batch of 1) through the in-memory {@code
   * model}.
   */
  public static ExpertStatistics collect(Transformer model, List<int[]> sequences) {
    ExpertStatisticsCollector collector =
        new ExpertStatisticsCollector(
            model.config(),
            (layer, linear) ->
                model.parameters().get(model.layerPrefix(layer) + linear + ".weight"));
    try (NDManager m = NDManager.newBaseManager(model.device())) {
      for (int[] s : sequences) {
        try (NDManager call = m.newSubManager()) {
          model.logits(call, call.create(s, new Shape(1, s.length)), collector);
        }
      }
    }
    return collector.statistics();
  }

  /**
   * Statistics of {@code sequences} through the checkpoint in {@code modelDir}, streamed one layer
   * at a time ({@link StreamingTransformer}); the router and down-projection weights the collector
   * needs are read again from the checkpoint, one layer's worth at a time.
   */
  public static ExpertStatistics collect(Path modelDir, List<int[]> sequences, Device device)
      throws IOException {
    try (StreamingTransformer model = StreamingTransformer.open(modelDir, device);
        TensorSource source = Checkpoints.open(modelDir);
        NDManager m = NDManager.newBaseManager(device)) {
      ModelConfig c = model.config();
      LayerWeights weights = new LayerWeights(source, m, c);
      ExpertStatisticsCollector collector = new ExpertStatisticsCollector(c, weights);
      try {
        for (int[] s : sequences) {
          try (NDManager call = m.newSubManager()) {
            model.logits(call, call.create(s, new Shape(1, s.length)), collector);
          }
        }
      } finally {
        weights.close();
      }
      return collector.statistics();
    }
  }

  void addRouting(int layer, int[] chosen, float[] probabilities, int n) {
    tokens[layer] += n;
    for (int e : chosen) {
      routed[layer][e]++;
    }
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < experts; e++) {
        probabilitySum[layer][e] += probabilities[t * experts + e];
      }
    }
  }

  void addWeightedNorm(int layer, int expert, double sum) {
    weightedNormSum[layer][expert] += sum;
  }

  /** Number of MoE layers. */
  public int layers() {
    return tokens.length;
  }

  /** Experts per layer. */
  public int experts() {
    return experts;
  }

  /** Calibration tokens seen by {@code layer}'s router. */
  public long tokens(int layer) {
    return tokens[layer];
  }

  /** Fraction of tokens whose top-k includes {@code expert}. */
  public double frequency(int layer, int expert) {
    return mean(routed[layer][expert], layer);
  }

  /** Mean over tokens of the expert's softmax probability (over all experts). */
  public double meanRouterWeight(int layer, int expert) {
    return mean(probabilitySum[layer][expert], layer);
  }

  /** Mean over tokens of {@code w_e(x)·||expert_e(x)||} (0 for tokens not routed to it). */
  public double weightedOutputNorm(int layer, int expert) {
    return mean(weightedNormSum[layer][expert], layer);
  }

  /** The score of every expert of {@code layer} under {@code method}. */
  public double[] scores(int layer, ExpertScore method) {
    double[] s = new double[experts];
    for (int e = 0; e < experts; e++) {
      s[e] =
          switch (method) {
            case FREQUENCY -> frequency(layer, e);
            case WEIGHTED_NORM -> weightedOutputNorm(layer, e);
          };
    }
    return s;
  }

  /** Routing frequencies of {@code layer}'s experts. */
  public double[] frequencies(int layer) {
    return scores(layer, ExpertScore.FREQUENCY);
  }

  private double mean(double sum, int layer) {
    if (tokens[layer] == 0) {
      throw new IllegalStateException(
          "layer "
              + layer
              + " saw no calibration tokens: run the calibration forward passes first");
    }
    return sum / tokens[layer];
  }

  /** Router and down-projection weights of the layer being observed, read from the checkpoint. */
  private static final class LayerWeights implements ExpertStatisticsCollector.WeightLookup {
    private final TensorSource source;
    private final NDManager parent;
    private final ModelConfig c;
    private NDManager layerScope;
    private int layer = -1;
    private final Map<String, NDArray> cache = new HashMap<>();

    LayerWeights(TensorSource source, NDManager parent, ModelConfig c) {
      this.source = source;
      this.parent = parent;
      this.c = c;
    }

    @Override
    public NDArray weight(int l, String linear) {
      if (l != layer) {
        close();
        layerScope = parent.newSubManager();
        layer = l;
      }
      return cache.computeIfAbsent(
          linear,
          name -> {
            String full = Layout.layerPrefix(c, "", l) + name;
            try {
              return layerScope.create(
                  source.readFloatsDirect(full + ".weight"),
                  new Shape(source.info(full + ".weight").shape()),
                  DataType.FLOAT32);
            } catch (IOException e) {
              throw new UncheckedIOException(e);
            }
          });
    }

    void close() {
      cache.clear();
      if (layerScope != null) {
        layerScope.close();
        layerScope = null;
      }
      layer = -1;
    }
  }
}
