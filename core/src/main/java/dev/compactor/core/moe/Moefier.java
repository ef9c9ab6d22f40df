package dev.compactor.core.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * MoEfication (Zhang et al. 2022) of a dense Llama-family model: each layer's SwiGLU neurons are
 * split into E equal experts by balanced k-means, a linear router per layer learns to pick a
 * token's k heaviest experts, and the result is written as a dense checkpoint whose neurons are
 * reordered expert by expert plus the routers (see {@link ModelConfig#moeficationExperts()}).
 *
 * <p>Clustering is on activation patterns, not on the gate/up weight rows: neuron {@code j}'s point
 * is {@code |a_j|} over the first calibration tokens, {@code a = silu(gate x) * up x}, scaled to
 * unit length. Neurons that fire on the same tokens then share an expert, which is what lets a few
 * experts carry most of a token's activation mass; weight-row clustering only groups neurons whose
 * input directions look alike, which for SwiGLU (the product of two projections) says less about
 * co-activation.
 *
 * <p>Routers are trained on the dense model's hidden states (every layer sees the dense model's
 * inputs, as in MoEfication), with targets from the dense activations; recall is measured on
 * separate held-out tokens.
 */
public final class Moefier {

  /** What a neuron's point for balanced k-means is. */
  public enum Clustering {
    /** {@code |a_j|} over the first calibration tokens, unit length (the default; see above). */
    ACTIVATIONS,
    /** gate_proj row j and up_proj row j side by side, unit length (MoEfication's "parameter"). */
    WEIGHTS,
    /** A seeded random balanced split: the baseline that shows what clustering buys. */
    RANDOM
  }

  /**
   * @param clustering how neurons are grouped
   * @param experts E, dividing the intermediate size
   * @param ks the experts-per-token values to train routers for (1..E)
   * @param clusterTokens how many calibration tokens make up each neuron's activation pattern
   * @param kmeansIterations upper bound on balanced k-means iterations
   * @param router router optimisation
   * @param seed clustering seed (layer {@code i} uses {@code seed + i})
   */
  public record Settings(
      Clustering clustering,
      int experts,
      int[] ks,
      int clusterTokens,
      int kmeansIterations,
      RouterTrainer.Settings router,
      long seed) {
    public Settings {
      ks = ks.clone();
      for (int k : ks) {
        if (k < 1 || k > experts) {
          throw new IllegalArgumentException(
              "moefication: expected every k between 1 and E = " + experts + ", found " + k);
        }
      }
      if (clusterTokens < 1 || kmeansIterations < 1) {
        throw new IllegalArgumentException(
            "moefication: expected clusterTokens and kmeansIterations >= 1");
      }
    }

    @Override
    public int[] ks() {
      return ks.clone();
    }
  }

  /**
   * One layer's split.
   *
   * @param order new neuron position to old neuron index (expert e owns positions [e*m, (e+1)*m))
   * @param routers router weight [E, hidden] row-major by k
   * @param firstLoss router loss before training, by k
   * @param lastLoss router loss of the last step, by k
   * @param heldOutRecall fraction of the held-out tokens' k heaviest experts the router picks, by k
   * @param oracleMass share of a held-out token's {@code sum |a|} its k heaviest experts carry (the
   *     best any router could do with this split), mean over tokens, by k
   * @param routedMass share of that mass the router's k experts carry, by k
   */
  public record LayerPlan(
      int[] order,
      Map<Integer, float[]> routers,
      Map<Integer, Float> firstLoss,
      Map<Integer, Float> lastLoss,
      Map<Integer, Double> heldOutRecall,
      Map<Integer, Double> oracleMass,
      Map<Integer, Double> routedMass) {}

  /**
   * Every layer's split, and how many tokens it was made and checked on.
   *
   * @param experts E
   * @param layers per decoder layer
   * @param trainTokens calibration tokens the clusters and routers come from
   * @param heldOutTokens tokens the recall is measured on
   */
  public record Plan(int experts, List<LayerPlan> layers, int trainTokens, int heldOutTokens) {

    /** Router recall on held-out tokens for {@code k}, averaged over layers. */
    public double meanRecall(int k) {
      return layers.stream().mapToDouble(l -> l.heldOutRecall().get(k)).average().orElse(0);
    }

    /** {@link LayerPlan#oracleMass} for {@code k}, averaged over layers. */
    public double meanOracleMass(int k) {
      return layers.stream().mapToDouble(l -> l.oracleMass().get(k)).average().orElse(0);
    }

    /** {@link LayerPlan#routedMass} for {@code k}, averaged over layers. */
    public double meanRoutedMass(int k) {
      return layers.stream().mapToDouble(l -> l.routedMass().get(k)).average().orElse(0);
    }
  }

  /** Calibration tokens per neuron's activation pattern when a caller gives none. */
  public static final int DEFAULT_CLUSTER_TOKENS = 4096;

  /** Upper bound on balanced k-means iterations when a caller gives none. */
  public static final int DEFAULT_KMEANS_ITERATIONS = 50;

  private Moefier() {}

  /** The float type a MoEfied copy of a model with config {@code c} is stored in (its own). */
  public static DType storage(ModelConfig c) {
    String dtype = c.torchDtype();
    return switch (dtype == null ? "float32" : dtype) {
      case "bfloat16" -> DType.BF16;
      case "float16" -> DType.F16;
      default -> DType.F32;
    };
  }

  /**
   * Throws {@link dev.compactor.core.model.UnsupportedModelException} for models it cannot split.
   */
  public static ModelConfig moefiedConfig(ModelConfig dense, int experts, int k) {
    dense.requireDenseLinears();
    if (dense.moefied()) {
      throw new UnsupportedOperationException("not supported yet: moefying a MoEfied model again");
    }
    return dense.with(
        "{\""
            + ModelConfig.MOEFICATION
            + "\":{\"num_experts\":"
            + experts
            + ",\"experts_per_token\":"
            + k
            + ",\"router\":\"linear\"}}");
  }

  /**
   * Clusters every layer's neurons and trains its routers: {@code train} windows feed clustering
   * and router training, {@code heldOut} windows only the recall figure.
   */
  public static Plan plan(
      Transformer dense,
      List<int[]> train,
      List<int[]> heldOut,
      Settings s,
      ProgressListener progress) {
    ModelConfig c = dense.config();
    for (int k : s.ks()) {
      moefiedConfig(c, s.experts(), k);
    }
    float[][] hTrain = mlpInputs(dense, train);
    float[][] hHeld = mlpInputs(dense, heldOut);
    List<LayerPlan> layers = new ArrayList<>();
    for (int i = 0; i < c.numLayers(); i++) {
      layers.add(planLayer(dense, i, hTrain[i], hHeld[i], s));
      hTrain[i] = null;
      progress.onProgress("moefication", i + 1, c.numLayers());
    }
    return new Plan(s.experts(), layers, tokens(train), tokens(heldOut));
  }

  private static int tokens(List<int[]> windows) {
    return windows.stream().mapToInt(w -> w.length).sum();
  }

  private static LayerPlan planLayer(
      Transformer dense, int layer, float[] hTrain, float[] hHeld, Settings s) {
    ModelConfig c = dense.config();
    int hidden = c.hiddenSize();
    int inter = c.intermediateSize();
    int experts = s.experts();
    float[] aTrain = activation(dense, layer, hTrain);
    int n = hTrain.length / hidden;
    int[] assignment =
        switch (s.clustering()) {
          case RANDOM -> randomSplit(inter, experts, new java.util.Random(s.seed() + layer));
          case ACTIVATIONS, WEIGHTS -> {
            float[][] points =
                s.clustering() == Clustering.ACTIVATIONS
                    ? activationPoints(aTrain, inter, Math.min(n, s.clusterTokens()))
                    : weightPoints(dense, layer);
            yield BalancedKMeans.cluster(points, experts, s.kmeansIterations(), s.seed() + layer);
          }
        };
    int[] order = new int[inter];
    int at = 0;
    for (int e = 0; e < experts; e++) {
      for (int j = 0; j < inter; j++) {
        if (assignment[j] == e) {
          order[at++] = j;
        }
      }
    }
    float[] massTrain = expertMass(aTrain, inter, assignment, experts);
    float[] massHeld = expertMass(activation(dense, layer, hHeld), inter, assignment, experts);
    int nHeld = hHeld.length / hidden;
    Map<Integer, float[]> routers = new LinkedHashMap<>();
    Map<Integer, Float> first = new LinkedHashMap<>();
    Map<Integer, Float> last = new LinkedHashMap<>();
    Map<Integer, Double> recall = new LinkedHashMap<>();
    Map<Integer, Double> oracle = new LinkedHashMap<>();
    Map<Integer, Double> routed = new LinkedHashMap<>();
    int[] ks = s.ks();
    Arrays.sort(ks);
    float[] widest = new float[experts * hidden];
    for (int k : ks) {
      if (k == experts) {
        // every expert runs: the router's choice does not matter
        routers.put(k, widest);
        recall.put(k, 1.0);
        oracle.put(k, 1.0);
        routed.put(k, 1.0);
        continue;
      }
      int[] targets = MoefiedMlp.topK(massTrain, n, experts, k);
      RouterTrainer.Router r = RouterTrainer.train(hTrain, hidden, targets, experts, k, s.router());
      routers.put(k, r.weight());
      widest = r.weight();
      first.put(k, r.losses()[0]);
      last.put(k, r.losses()[r.losses().length - 1]);
      int[] heldTargets = MoefiedMlp.topK(massHeld, nHeld, experts, k);
      recall.put(k, RouterTrainer.recall(r.weight(), hHeld, hidden, heldTargets, k));
      oracle.put(k, massShare(massHeld, experts, heldTargets, k));
      routed.put(
          k, massShare(massHeld, experts, RouterTrainer.choose(r.weight(), hHeld, hidden, k), k));
    }
    return new LayerPlan(order, routers, first, last, recall, oracle, routed);
  }

  /** Mean over tokens of the share of {@code mass} [tokens, E] in each token's chosen experts. */
  static double massShare(float[] mass, int experts, int[] chosen, int k) {
    int n = mass.length / experts;
    double sum = 0;
    for (int t = 0; t < n; t++) {
      double total = 0;
      double in = 0;
      for (int e = 0; e < experts; e++) {
        total += mass[t * experts + e];
      }
      for (int j = 0; j < k; j++) {
        in += mass[t * experts + chosen[t * k + j]];
      }
      sum += total > 0 ? in / total : 1;
    }
    return n == 0 ? Double.NaN : sum / n;
  }

  private static float[][] activationPoints(float[] a, int inter, int tokens) {
    float[][] points = new float[inter][tokens];
    for (int j = 0; j < inter; j++) {
      for (int t = 0; t < tokens; t++) {
        points[j][t] = Math.abs(a[t * inter + j]);
      }
      unitLength(points[j]);
    }
    return points;
  }

  private static float[][] weightPoints(Transformer dense, int layer) {
    int hidden = dense.config().hiddenSize();
    int inter = dense.config().intermediateSize();
    String prefix = dense.layerPrefix(layer);
    float[] gate = dense.parameters().get(prefix + "mlp.gate_proj.weight").toFloatArray();
    float[] up = dense.parameters().get(prefix + "mlp.up_proj.weight").toFloatArray();
    float[][] points = new float[inter][2 * hidden];
    for (int j = 0; j < inter; j++) {
      System.arraycopy(gate, j * hidden, points[j], 0, hidden);
      System.arraycopy(up, j * hidden, points[j], hidden, hidden);
      unitLength(points[j]);
    }
    return points;
  }

  private static void unitLength(float[] v) {
    double norm = 0;
    for (float x : v) {
      norm += (double) x * x;
    }
    if (norm > 0) {
      float scale = (float) (1 / Math.sqrt(norm));
      for (int i = 0; i < v.length; i++) {
        v[i] *= scale;
      }
    }
  }

  private static int[] randomSplit(int inter, int experts, java.util.Random random) {
    int[] a = new int[inter];
    for (int j = 0; j < inter; j++) {
      a[j] = j % experts;
    }
    for (int j = inter - 1; j > 0; j--) {
      int i = random.nextInt(j + 1);
      int t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** Each layer's MLP input (post-attention RMSNorm output) over all windows, [tokens, hidden]. */
  static float[][] mlpInputs(Transformer dense, List<int[]> windows) {
    ModelConfig c = dense.config();
    int layers = c.numLayers();
    int hidden = c.hiddenSize();
    float[][] out = new float[layers][checkedSize(tokens(windows), hidden)];
    int[] filled = new int[layers];
    try (NDManager m = NDManager.newBaseManager(dense.device())) {
      for (int[] w : windows) {
        try (NDManager call = m.newSubManager()) {
          NDArray ids = call.create(w, new Shape(1, w.length));
          dense.logits(
              call,
              ids,
              (layer, name, input) -> {
                if (name.equals("mlp.gate_proj")) {
                  float[] v = input.toFloatArray();
                  System.arraycopy(v, 0, out[layer], filled[layer], v.length);
                  filled[layer] += v.length;
                }
              });
        }
      }
    }
    return out;
  }

  /** silu(gate h) * up h of layer {@code layer} for h [tokens, hidden], [tokens, inter]. */
  static float[] activation(Transformer dense, int layer, float[] h) {
    ModelConfig c = dense.config();
    String prefix = dense.layerPrefix(layer);
    NDArray gate = dense.parameters().get(prefix + "mlp.gate_proj.weight");
    NDArray up = dense.parameters().get(prefix + "mlp.up_proj.weight");
    int n = h.length / c.hiddenSize();
    checkedSize(n, c.intermediateSize());
    try (NDManager m = NDManager.newBaseManager(dense.device())) {
      NDArray x = m.create(h, new Shape(n, c.hiddenSize()));
      NDArray g = Linear.linear(x, gate).head();
      return g.mul(Activation.sigmoid(g)).mul(Linear.linear(x, up).head()).toFloatArray();
    }
  }

  /** {@code tokens * width} as one Java array's length, or a clear refusal. */
  private static int checkedSize(int tokens, int width) {
    long size = (long) tokens * width;
    if (size > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + tokens
              + " calibration tokens x "
              + width
              + " values exceed one Java array; use fewer calibration windows");
    }
    return (int) size;
  }

  /** {@code sum |a_j|} over each expert's neurons, [tokens, E]. */
  static float[] expertMass(float[] a, int inter, int[] assignment, int experts) {
    int n = a.length / inter;
    float[] mass = new float[n * experts];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < inter; j++) {
        mass[t * experts + assignment[j]] += Math.abs(a[t * inter + j]);
      }
    }
    return mass;
  }

  /**
   * Writes the MoEfied model for {@code k}: every tensor of {@code dense} (gate/up rows and
   * down_proj columns in the plan's neuron order), each layer's router after its down_proj, and
   * {@code config.json} with the {@code compactor_moefication} field.
   */
  public static void write(
      Transformer dense, Plan plan, int k, Path out, DType storeAs, Map<String, String> metadata)
      throws IOException {
    ModelConfig c = moefiedConfig(dense.config(), plan.experts(), k);
    String torchDtype =
        switch (storeAs) {
          case F32 -> "float32";
          case F16 -> "float16";
          case BF16 -> "bfloat16";
          default ->
              throw new IllegalArgumentException(
                  "moefication: expected F32, F16 or BF16 storage, found " + storeAs);
        };
    int hidden = c.hiddenSize();
    int inter = c.intermediateSize();
    Map<String, Integer> gateUp = new LinkedHashMap<>();
    Map<String, Integer> down = new LinkedHashMap<>();
    for (int i = 0; i < c.numLayers(); i++) {
      gateUp.put(dense.layerPrefix(i) + "mlp.gate_proj.weight", i);
      gateUp.put(dense.layerPrefix(i) + "mlp.up_proj.weight", i);
      down.put(dense.layerPrefix(i) + "mlp.down_proj.weight", i);
    }
    Files.createDirectories(out);
    try (SafetensorsWriter writer = new SafetensorsWriter(out, metadata)) {
      for (Map.Entry<String, NDArray> e : dense.parameters().entrySet()) {
        long[] shape = e.getValue().getShape().getShape();
        float[] v = e.getValue().toFloatArray();
        Integer layer = gateUp.get(e.getKey());
        if (layer != null) {
          v = permuteRows(v, hidden, plan.layers().get(layer).order());
        }
        layer = down.get(e.getKey());
        writer.write(
            e.getKey(),
            storeAs,
            shape,
            layer == null ? v : permuteColumns(v, inter, plan.layers().get(layer).order()));
        if (layer != null) {
          float[] router = plan.layers().get(layer).routers().get(k);
          if (router == null) {
            throw new IllegalArgumentException("moefication: the plan has no router for k " + k);
          }
          writer.write(
              dense.layerPrefix(layer) + Layout.MOEFICATION_ROUTER + ".weight",
              storeAs,
              new long[] {plan.experts(), hidden},
              router);
        }
      }
    }
    ModelConfig saved = c.with("{\"torch_dtype\":\"" + torchDtype + "\"}");
    Files.writeString(out.resolve("config.json"), saved.toJson());
  }

  /** Row {@code r} of the result is row {@code order[r]} of {@code w} (rows of {@code cols}). */
  public static float[] permuteRows(float[] w, int cols, int[] order) {
    float[] out = new float[w.length];
    for (int r = 0; r < order.length; r++) {
      System.arraycopy(w, order[r] * cols, out, r * cols, cols);
    }
    return out;
  }

  /** Column {@code j} of the result is column {@code order[j]} of {@code w} (rows of cols). */
  public static float[] permuteColumns(float[] w, int cols, int[] order) {
    float[] out = new float[w.length];
    int rows = w.length / cols;
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        out[r * cols + j] = w[r * cols + order[j]];
      }
    }
    return out;
  }
}
