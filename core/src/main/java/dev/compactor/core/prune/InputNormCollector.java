package dev.compactor.core.prune;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.compactor.core.prune.PruningSpec.Linear;
import java.util.HashMap;
import java.util.Map;

/**
 * Accumulates, for every decoder linear, the squared L2 norm of each input feature over all
 * calibration tokens that pass through it: the {@code ||X_j||_2} of Wanda's score. It is fed the
 * input of each linear during calibration forward passes and keeps only one small vector per
 * linear, so calibrating never holds activations beyond the current batch.
 */
public final class InputNormCollector {

  private final Map<Key, double[]> sumSquares = new HashMap<>();
  private final Map<Key, Long> tokens = new HashMap<>();

  private record Key(int layer, String linear) {}

  /**
   * Adds the input of linear {@code linear} (relative to the layer prefix, as the forward names it:
   * {@code self_attn.q_proj}, {@code block_sparse_moe.experts.3.w1}) in decoder layer {@code
   * layer}: any shape whose last axis is the input features. An expert is shown only the tokens
   * routed to it, so its norms and token count are those of its routed tokens.
   */
  public void observe(int layer, String linear, NDArray input) {
    long[] shape = input.getShape().getShape();
    int features = (int) shape[shape.length - 1];
    float[] sq;
    // Every intermediate gets its own handle and is closed here, so a long calibration run does
    // not pile up native memory in the model's manager.
    try (NDArray flat = input.reshape(-1, features);
        NDArray f32 = flat.toType(DataType.FLOAT32, true);
        NDArray squares = f32.square();
        NDArray sums = squares.sum(new int[] {0})) {
      sq = sums.toFloatArray();
    }
    Key key = new Key(layer, linear);
    double[] acc = sumSquares.computeIfAbsent(key, k -> new double[features]);
    if (acc.length != features) {
      throw new IllegalArgumentException(
          "layer "
              + layer
              + " "
              + linear
              + " had "
              + acc.length
              + " input features, now "
              + features);
    }
    for (int j = 0; j < features; j++) {
      acc[j] += sq[j];
    }
    tokens.merge(key, input.getShape().size() / features, Long::sum);
  }

  /** True when inputs of that linear (relative name) were observed. */
  public boolean has(int layer, String linear) {
    return sumSquares.containsKey(new Key(layer, linear));
  }

  /** Number of calibration tokens seen by that linear (relative name). */
  public long tokens(int layer, String linear) {
    return tokens.getOrDefault(new Key(layer, linear), 0L);
  }

  /** {@link #tokens(int, String)} of a dense Llama-style linear. */
  public long tokens(int layer, Linear linear) {
    return tokens(layer, linear.module() + "." + linear.hfName());
  }

  /** The most calibration tokens any linear saw (all see the same in a full forward pass). */
  public long calibrationTokens() {
    return tokens.values().stream().mapToLong(Long::longValue).max().orElse(0L);
  }

  /** ||X_j||_2 for each input feature j of that linear (relative name). */
  public float[] norms(int layer, String linear) {
    double[] acc = sumSquares.get(new Key(layer, linear));
    if (acc == null) {
      throw new IllegalStateException(
          "no calibration input was observed for layer "
              + layer
              + " "
              + linear
              + ": run the calibration forward passes first");
    }
    float[] n = new float[acc.length];
    for (int j = 0; j < acc.length; j++) {
      n[j] = (float) Math.sqrt(acc[j]);
    }
    return n;
  }
}
