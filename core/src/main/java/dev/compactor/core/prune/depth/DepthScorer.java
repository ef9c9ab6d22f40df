package dev.compactor.core.prune.depth;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.CalibrationCollector;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Scores every decoder layer of a checkpoint on calibration windows, streamed like the sequential
 * pruning and GPTQ paths: the windows' hidden states go through {@link Forward#layer} one layer at
 * a time, so only the token embedding, one layer's weights and the last {@code maxBlock + 1} hidden
 * states ({@code windows x seq x hidden} fp32 each) are in memory, never the whole model.
 *
 * <p>The windows are the ones every calibration path uses (contiguous slices of the tokenized text,
 * no padding and no BOS inserted), so every position is a real token and all of them are counted
 * ({@link TokenPositions#ALL}) unless {@link TokenPositions#LAST} asks for the paper's last token.
 *
 * <p>Cosines are reduced over the hidden axis in fp32 by libtorch and finished in double: an exact
 * identity layer ({@code h_out == h_in}) then scores cos = 1, BI = 0 and distance 0 exactly.
 */
public final class DepthScorer {

  /** Told when each layer's scores are known. */
  public interface Progress {
    void layerDone(int layer, int layers, double blockInfluence);

    Progress NONE = (layer, layers, bi) -> {};
  }

  private final int maxBlock;
  private final TokenPositions positions;
  private final int batchSize;

  /**
   * @param maxBlock the longest block of consecutive layers whose angular distance is measured (the
   *     number of layers to drop; capped at L-1); costs one held hidden state per block length
   * @param batchSize windows per layer pass
   */
  public DepthScorer(int maxBlock, TokenPositions positions, int batchSize) {
    if (maxBlock < 1) {
      throw new IllegalArgumentException("maxBlock must be at least 1, found " + maxBlock);
    }
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize must be positive, found " + batchSize);
    }
    this.maxBlock = maxBlock;
    this.positions = positions;
    this.batchSize = batchSize;
  }

  /** Scores {@code source} (config {@code config}) on {@code windows} (token ids, one length). */
  public DepthScores score(
      ModelConfig config, TensorSource source, List<int[]> windows, Progress progress)
      throws IOException {
    if (config.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: depth scores of " + config.modelType() + " (Conv1D layers)");
    }
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("depth scores need calibration text, found no windows");
    }
    int seq = windows.get(0).length;
    for (int[] w : windows) {
      if (w.length != seq) {
        throw new IllegalArgumentException(
            "calibration windows must have equal length: " + seq + " and " + w.length);
      }
    }
    if (seq > config.positionLimit()) {
      throw new IllegalArgumentException(
          "calibration windows of " + seq + " tokens exceed the context " + config.positionLimit());
    }
    int layers = config.numLayers();
    Accumulator acc =
        new Accumulator(layers, Math.max(1, Math.min(maxBlock, layers - 1)), positions);
    Deque<State> held = new ArrayDeque<>();
    try (NDManager root = NDManager.newBaseManager(Device.cpu())) {
      Forward forward = new Forward(config, "", root);
      held.addLast(embed(config, source, windows, root.newSubManager()));
      for (int i = 0; i < layers; i++) {
        State next = layer(config, forward, source, i, held.getLast(), root.newSubManager());
        List<List<NDArray>> earlier = new ArrayList<>();
        for (State s : held) {
          earlier.add(s.batches());
        }
        acc.add(earlier, next.batches());
        held.addLast(next);
        while (held.size() > acc.maxBlock) {
          held.removeFirst().scope().close();
        }
        progress.layerDone(i, layers, acc.blockInfluence(i));
      }
      for (State s : held) {
        s.scope().close();
      }
    }
    return acc.result();
  }

  /** One hidden state h_j of every window, in batches, living in {@code scope}. */
  private record State(NDManager scope, List<NDArray> batches) {}

  private State layer(
      ModelConfig config, Forward forward, TensorSource source, int i, State in, NDManager keep)
      throws IOException {
    String prefix = Layout.layerPrefix(config, "", i);
    List<NDArray> out = new ArrayList<>();
    try (NDManager scope = in.scope().newSubManager()) {
      Map<String, NDArray> w = new HashMap<>();
      for (Layout.Spec s : Layout.layer(config, i)) {
        w.put(s.name(), scope.create(source.readFloats(prefix + s.name()), new Shape(s.shape())));
      }
      for (NDArray x : in.batches()) {
        try (NDManager batch = scope.newSubManager()) {
          // a copy, so the forward's intermediates attach to the batch scope, not the held state
          NDArray copy = x.duplicate();
          copy.attach(batch);
          NDArray y = forward.layer(batch, i, w, copy, null);
          y.attach(keep);
          out.add(y);
        }
      }
    }
    return new State(keep, out);
  }

  private State embed(ModelConfig config, TensorSource source, List<int[]> windows, NDManager scope)
      throws IOException {
    return new State(
        scope, CalibrationCollector.embedBatches(config, source, windows, batchSize, scope));
  }

  /**
   * Sums of cos and of arccos/pi between hidden states, fed h_0, h_1, ... in order: each new state
   * h_j is compared with the held h_{j-n}, n = 1 .. maxBlock.
   */
  static final class Accumulator {
    final int layers;
    final int maxBlock;
    final TokenPositions positions;
    private final double[][] cosSum;
    private final double[][] angleSum;
    private long vectors = -1;
    private int seen = 1;

    Accumulator(int layers, int maxBlock, TokenPositions positions) {
      if (maxBlock < 1 || maxBlock >= layers + 1) {
        throw new IllegalArgumentException(
            "block lengths 1.." + maxBlock + " for " + layers + " layers");
      }
      this.layers = layers;
      this.maxBlock = maxBlock;
      this.positions = positions;
      cosSum = new double[maxBlock][];
      angleSum = new double[maxBlock][];
      for (int n = 1; n <= maxBlock; n++) {
        cosSum[n - 1] = new double[layers - n + 1];
        angleSum[n - 1] = new double[layers - n + 1];
      }
    }

    /**
     * Adds h_j = {@code next} (j = the states seen so far); {@code held} are the states before it,
     * oldest first, at least the last {@code min(j, maxBlock)} of them.
     */
    void add(List<List<NDArray>> held, List<NDArray> next) {
      int j = seen++;
      if (j > layers) {
        throw new IllegalStateException("more than " + (layers + 1) + " hidden states");
      }
      for (int n = 1; n <= Math.min(j, maxBlock); n++) {
        List<NDArray> earlier = held.get(held.size() - n);
        double cos = 0;
        double angle = 0;
        long count = 0;
        for (int b = 0; b < next.size(); b++) {
          for (double c : cosines(earlier.get(b), next.get(b), positions)) {
            cos += c;
            angle += Math.acos(c) / Math.PI;
            count++;
          }
        }
        if (vectors >= 0 && count != vectors) {
          throw new IllegalStateException("hidden states changed size: " + count + " vectors");
        }
        vectors = count;
        cosSum[n - 1][j - n] = cos;
        angleSum[n - 1][j - n] = angle;
      }
    }

    double blockInfluence(int layer) {
      return 1 - cosSum[0][layer] / vectors;
    }

    DepthScores result() {
      if (seen != layers + 1) {
        throw new IllegalStateException(
            "scored " + (seen - 1) + " of " + layers + " layers; the stack is incomplete");
      }
      double[] bi = new double[layers];
      for (int i = 0; i < layers; i++) {
        bi[i] = blockInfluence(i);
      }
      double[][] angular = new double[maxBlock][];
      for (int n = 0; n < maxBlock; n++) {
        angular[n] = new double[angleSum[n].length];
        for (int l = 0; l < angular[n].length; l++) {
          angular[n][l] = angleSum[n][l] / vectors;
        }
      }
      return new DepthScores(layers, maxBlock, positions, vectors, bi, angular);
    }
  }

  /**
   * cos(a_t, b_t) of every token vector t of {@code a}, {@code b} ({@code [batch, seq, hidden]}),
   * or of the last position only; in [-1, 1]. Two zero vectors are identical (1), one zero vector
   * is orthogonal to anything (0).
   */
  static double[] cosines(NDArray a, NDArray b, TokenPositions positions) {
    if (!a.getShape().equals(b.getShape()) || a.getShape().dimension() != 3) {
      throw new IllegalArgumentException(
          "expected two hidden states [batch, seq, hidden], found "
              + a.getShape()
              + " and "
              + b.getShape());
    }
    float[] dot;
    float[] aa;
    float[] bb;
    int[] hiddenAxis = {2};
    if (positions == TokenPositions.LAST) {
      try (NDArray x = a.get(new NDIndex(":, -1:, :"));
          NDArray y = b.get(new NDIndex(":, -1:, :"))) {
        return cosines(x, y, TokenPositions.ALL);
      }
    }
    try (NDArray xy = a.mul(b);
        NDArray xySum = xy.sum(hiddenAxis);
        NDArray xx = a.square();
        NDArray xxSum = xx.sum(hiddenAxis);
        NDArray yy = b.square();
        NDArray yySum = yy.sum(hiddenAxis)) {
      dot = xySum.toFloatArray();
      aa = xxSum.toFloatArray();
      bb = yySum.toFloatArray();
    }
    double[] out = new double[dot.length];
    for (int t = 0; t < dot.length; t++) {
      if (aa[t] == 0 || bb[t] == 0) {
        out[t] = aa[t] == bb[t] ? 1 : 0;
        continue;
      }
      double c = dot[t] / Math.sqrt((double) aa[t] * bb[t]);
      out[t] = Math.max(-1, Math.min(1, c));
    }
    return out;
  }
}
