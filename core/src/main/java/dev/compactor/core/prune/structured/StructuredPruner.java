package dev.compactor.core.prune.structured;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.SparseGptPruner;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.quant.calib.CalibrationCollector;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Structured pruning of a dense Llama-family model (Llama, Mistral, Qwen2, Qwen3): removes whole
 * attention heads (GQA-aware, {@link HeadMode}) and MLP channels, so the written tensors are truly
 * smaller and {@code config.json} says so ({@code num_attention_heads}, {@code
 * num_key_value_heads}, an explicit {@code head_dim}, {@code intermediate_size}).
 *
 * <p>Calibration is streamed like SparseGPT's: the windows' hidden states go through the model one
 * decoder layer at a time (only that layer's weights in memory), each through the model's own
 * {@link Forward#layer}. Within a layer: (1) a pass scores the heads from the o_proj input and the
 * heads are cut; (2) a pass through the head-pruned layer scores the MLP channels from the
 * down_proj input and they are cut; (3) a pass through the finished layer gives the next layer's
 * inputs, so every layer is scored on the outputs of the already-pruned layers before it. The same
 * count is removed from every layer (uniform widths), chosen per layer by its own scores; with
 * {@link StructuredSpec.Widths#PER_LAYER} a first streamed pass over the unpruned model decides how
 * many channels each layer loses ({@link #lowestAcrossLayers} of standardised scores, as FLAP's
 * adaptive structure search) and the layers then lose that many, chosen as before. The result then
 * has {@link ModelConfig#LAYER_INTERMEDIATE_SIZES}, which Hugging Face's configs cannot express:
 * only Compactor loads it.
 *
 * <p>With {@code compensate} (FLAP), the removed inputs' mean contribution {@code W[:, removed] ·
 * mean(x[removed])} is added to o_proj's / down_proj's bias. Hugging Face has those biases only
 * behind {@code attention_bias} (Llama and Qwen3: q, k, v and o) and {@code mlp_bias} (Llama: gate,
 * up and down); the flag is set and the other biases it implies are written as zeros, so HF loads
 * the result. Families without the flag refuse compensation.
 *
 * <p>Refused as not supported yet: GPT-2, Phi-3 (fused qkv / gate_up projections), mixtures of
 * experts, MoEfied MLPs, inputs that already have per-layer widths, per-layer head counts.
 */
public final class StructuredPruner {

  private static final Logger LOG = LoggerFactory.getLogger(StructuredPruner.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Windows per layer pass (bounds the attention activations' memory). */
  public static final int BATCH = 8;

  /** Progress of a run: fraction done (0..1) and what just happened. */
  @FunctionalInterface
  public interface Progress {
    Progress NONE = (fraction, message) -> {};

    void report(double fraction, String message);
  }

  private final StructuredSpec spec;

  public StructuredPruner(StructuredSpec spec) {
    this.spec = spec;
  }

  /**
   * Refuses what this pruner cannot do with {@code c} and {@code spec}, with the reason (also used
   * by recipe checks at job start).
   *
   * @throws UnsupportedOperationException "not supported yet: ..."
   * @throws IllegalArgumentException when a fraction removes nothing or everything
   */
  public static void check(ModelConfig c, StructuredSpec spec) {
    String type = c.modelType();
    if (c.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: structured pruning of " + type + " (Conv1D layers)");
    }
    if (c.fusedProjections()) {
      throw new UnsupportedOperationException(
          "not supported yet: structured pruning of "
              + type
              + " (fused qkv_proj / gate_up_proj projections)");
    }
    if (c.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: structured pruning of " + type + " (mixture-of-experts layers)");
    }
    if (c.moefied()) {
      throw new UnsupportedOperationException(
          "not supported yet: structured pruning of a MoEfied model (its expert slices)");
    }
    c.requireUniformWidths("structured pruning");
    removedHeads(c, spec);
    removedChannels(c, spec);
    if (spec.compensate()) {
      if (spec.heads() > 0 && !type.equals("llama") && !type.equals("qwen3")) {
        throw new UnsupportedOperationException(
            "not supported yet: bias compensation of heads on "
                + type
                + " (Hugging Face's "
                + type
                + " o_proj has no bias; only llama and qwen3 read attention_bias)");
      }
      if (spec.channels() > 0 && !type.equals("llama")) {
        throw new UnsupportedOperationException(
            "not supported yet: bias compensation of MLP channels on "
                + type
                + " (Hugging Face's "
                + type
                + " down_proj has no bias; only llama reads mlp_bias)");
      }
    }
  }

  /** KV groups ({@link HeadMode#KV_GROUPS}) or query heads per group removed from every layer. */
  static int removedHeads(ModelConfig c, StructuredSpec spec) {
    if (spec.heads() == 0) {
      return 0;
    }
    boolean groups = spec.headMode() == HeadMode.KV_GROUPS;
    int of = groups ? c.numKvHeads() : c.numHeads() / c.numKvHeads();
    int n = (int) Math.round(spec.heads() * of);
    String what =
        groups
            ? c.numKvHeads() + " KV groups"
            : (c.numHeads() / c.numKvHeads()) + " query heads per KV group";
    if (n == 0 || n >= of) {
      throw new IllegalArgumentException(
          "heads "
              + spec.heads()
              + " ("
              + spec.headMode().key()
              + ") removes "
              + n
              + " of the "
              + what
              + "; choose a fraction that removes at least one and keeps at least one");
    }
    return n;
  }

  static int removedChannels(ModelConfig c, StructuredSpec spec) {
    if (spec.channels() == 0) {
      return 0;
    }
    int n = (int) Math.round(spec.channels() * c.intermediateSize());
    if (n == 0 || n >= c.intermediateSize()) {
      throw new IllegalArgumentException(
          "channels "
              + spec.channels()
              + " removes "
              + n
              + " of "
              + c.intermediateSize()
              + " MLP channels; choose a fraction that removes at least one and keeps one");
    }
    return n;
  }

  /** The config after pruning heads only ({@code withChannels} false) or heads and channels. */
  static ModelConfig prunedConfig(ModelConfig c, StructuredSpec spec, boolean withChannels) {
    return prunedConfig(c, spec, withChannels, null);
  }

  /**
   * As above; {@code removedPerLayer} (null for uniform widths) is each layer's count of removed
   * MLP channels, written as {@link ModelConfig#LAYER_INTERMEDIATE_SIZES}.
   */
  static ModelConfig prunedConfig(
      ModelConfig c, StructuredSpec spec, boolean withChannels, int[] removedPerLayer) {
    ObjectNode f = JSON.createObjectNode();
    int removed = removedHeads(c, spec);
    int rep = c.numHeads() / c.numKvHeads();
    if (spec.headMode() == HeadMode.KV_GROUPS) {
      f.put("num_attention_heads", (c.numKvHeads() - removed) * rep);
      f.put("num_key_value_heads", c.numKvHeads() - removed);
    } else {
      f.put("num_attention_heads", c.numKvHeads() * (rep - removed));
      f.put("num_key_value_heads", c.numKvHeads());
    }
    f.put("head_dim", c.headDim());
    if (spec.compensate() && spec.heads() > 0) {
      f.put("attention_bias", true);
    }
    if (withChannels && removedPerLayer != null) {
      var widths = f.putArray(ModelConfig.LAYER_INTERMEDIATE_SIZES);
      int max = 0;
      for (int cut : removedPerLayer) {
        widths.add(c.intermediateSize() - cut);
        max = Math.max(max, c.intermediateSize() - cut);
      }
      f.put("intermediate_size", max);
      if (spec.compensate() && spec.channels() > 0) {
        f.put("mlp_bias", true);
      }
    } else if (withChannels) {
      f.put("intermediate_size", c.intermediateSize() - removedChannels(c, spec));
      if (spec.compensate() && spec.channels() > 0) {
        f.put("mlp_bias", true);
      }
    }
    return c.with(f.toString());
  }

  /**
   * Calibrates on {@code windows} (token ids, one length) and writes the pruned model to {@code
   * outputDir} (absent or empty): weights in the input's dtype, config.json updated, tokenizer
   * files copied; {@code metadata} is added to the safetensors metadata.
   */
  public StructuredReport prune(
      Path inputDir,
      Path outputDir,
      List<int[]> windows,
      Map<String, String> metadata,
      Progress progress)
      throws IOException {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("structured pruning needs calibration windows");
    }
    if (Files.exists(outputDir)) {
      try (var s = Files.list(outputDir)) {
        if (s.findAny().isPresent()) {
          throw new IOException("output directory " + outputDir + " must be empty or absent");
        }
      }
    }
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig config = ModelConfig.read(inputDir);
    config.requireDenseLinears();
    check(config, spec);
    int seq = windows.get(0).length;
    for (int[] w : windows) {
      if (w.length != seq) {
        throw new IllegalArgumentException("calibration windows must have equal length");
      }
    }
    if (seq > config.maxPositions()) {
      throw new IllegalArgumentException(
          "calibration windows of " + seq + " tokens exceed the context " + config.maxPositions());
    }
    int[] removedPerLayer =
        spec.widths() == StructuredSpec.Widths.PER_LAYER
            ? allocateChannels(model, config, windows, progress)
            : null;
    ModelConfig headsPruned = spec.heads() > 0 ? prunedConfig(config, spec, false) : config;
    ModelConfig pruned = prunedConfig(config, spec, true, removedPerLayer);
    List<StructuredReport.Layer> layers = new ArrayList<>();
    try (TensorSource src = model.weights();
        NDManager root = NDManager.newBaseManager(Device.cpu())) {
      Map<String, String> meta = new LinkedHashMap<>(src.metadata());
      meta.putAll(describe(spec));
      meta.putAll(metadata);
      Forward original = new Forward(config, "", root);
      Forward afterHeads = new Forward(headsPruned, "", root);
      Forward finished = new Forward(pruned, "", root);
      Set<String> written = new HashSet<>();
      try (SafetensorsWriter out = new SafetensorsWriter(outputDir, 5_000_000_000L, meta)) {
        NDManager hiddenScope = root.newSubManager();
        List<NDArray> hidden = embed(config, src, windows, hiddenScope);
        for (int i = 0; i < config.numLayers(); i++) {
          String prefix = Layout.layerPrefix(config, "", i);
          Map<String, float[]> w = new HashMap<>();
          Map<String, DType> dtypes = new HashMap<>();
          for (Layout.Spec s : Layout.layer(config, i)) {
            w.put(s.name(), src.readFloats(prefix + s.name()));
            dtypes.put(s.name(), src.info(prefix + s.name()).dtype());
          }
          int[] removedQ = new int[0];
          int[] removedKv = new int[0];
          double[] headScores = new double[0];
          if (spec.heads() > 0) {
            InputStats st =
                observe(
                    original,
                    config,
                    i,
                    w,
                    hidden,
                    "self_attn.o_proj",
                    new InputStats(config.numHeads() * config.headDim(), config.headDim()));
            headScores =
                StructuredScores.heads(
                    spec.importance(),
                    st,
                    w.get("self_attn.o_proj.weight"),
                    config.hiddenSize(),
                    config.headDim());
            HeadPlan plan =
                HeadPlan.choose(
                    headScores, config.numKvHeads(), spec.headMode(), removedHeads(config, spec));
            removedQ = HeadPlan.removed(plan.keptQuery(), config.numHeads());
            removedKv = HeadPlan.removed(plan.keptKv(), config.numKvHeads());
            cutHeads(config, headsPruned, i, w, dtypes, plan, removedQ, st);
          }
          if (spec.heads() > 0) {
            progress.report(
                (i + 0.4) / config.numLayers(),
                "layer " + (i + 1) + "/" + config.numLayers() + ": heads scored and cut");
          }
          int[] removedCh = new int[0];
          StructuredReport.Summary channelSummary = null;
          if (spec.channels() > 0) {
            InputStats st =
                observe(
                    afterHeads,
                    headsPruned,
                    i,
                    w,
                    hidden,
                    "mlp.down_proj",
                    new InputStats(config.intermediateSize(), 0));
            double[] scores =
                StructuredScores.channels(
                    spec.importance(), st, w.get("mlp.down_proj.weight"), config.hiddenSize());
            int[] kept =
                HeadPlan.keepHighest(
                    scores,
                    config.intermediateSize()
                        - (removedPerLayer == null
                            ? removedChannels(config, spec)
                            : removedPerLayer[i]));
            removedCh = HeadPlan.removed(kept, config.intermediateSize());
            channelSummary = StructuredReport.Summary.of(scores, removedCh);
            cutChannels(headsPruned, pruned, i, w, dtypes, kept, removedCh, st);
          }
          NDManager next = root.newSubManager();
          List<NDArray> outputs = pass(finished, pruned, i, w, hidden, null, null, next);
          hiddenScope.close();
          hiddenScope = next;
          hidden = outputs;
          for (Layout.Spec s : Layout.layer(pruned, i)) {
            String name = prefix + s.name();
            out.write(name, dtypes.get(s.name()), s.shape(), w.get(s.name()));
            written.add(name);
          }
          for (Layout.Spec s : Layout.layer(config, i)) {
            written.add(prefix + s.name());
          }
          layers.add(
              new StructuredReport.Layer(
                  i, removedQ, removedKv, headScores, removedCh, channelSummary));
          LOG.info(
              "layer {}/{}: removed heads {} (kv {}), {} channels",
              i + 1,
              config.numLayers(),
              java.util.Arrays.toString(removedQ),
              java.util.Arrays.toString(removedKv),
              removedCh.length);
          progress.report(
              (i + 1.0) / config.numLayers(),
              "layer "
                  + (i + 1)
                  + "/"
                  + config.numLayers()
                  + ": removed "
                  + removedQ.length
                  + " heads, "
                  + removedCh.length
                  + " channels");
        }
        hiddenScope.close();
        for (String name : src.names()) {
          if (written.contains(name)) {
            continue;
          }
          if (name.startsWith("model.layers.") && !name.endsWith("rotary_emb.inv_freq")) {
            throw new UnsupportedOperationException(
                "not supported yet: structured pruning of tensor "
                    + name
                    + ", which the "
                    + config.modelType()
                    + " layout does not know");
          }
          out.copy(src, name);
        }
      }
    }
    ModelDirectory.writeConfig(outputDir, JSON.readTree(pruned.toJson()));
    model.copyAuxiliaryFilesTo(outputDir);
    long tokens = (long) windows.size() * seq;
    return new StructuredReport(
        spec,
        config.numHeads(),
        pruned.numHeads(),
        config.numKvHeads(),
        pruned.numKvHeads(),
        config.intermediateSize(),
        pruned.intermediateSize(),
        config.parameterCount(),
        pruned.parameterCount(),
        tokens,
        layers);
  }

  /** The provenance strings a structured-pruned checkpoint carries in its metadata. */
  public static Map<String, String> describe(StructuredSpec spec) {
    Map<String, String> m = new LinkedHashMap<>();
    m.put("compactor.prune.method", "structured");
    m.put("compactor.prune.structured.heads", Double.toString(spec.heads()));
    m.put("compactor.prune.structured.channels", Double.toString(spec.channels()));
    m.put("compactor.prune.structured.importance", spec.importance().key());
    m.put("compactor.prune.structured.head_mode", spec.headMode().key());
    m.put("compactor.prune.structured.compensate", Boolean.toString(spec.compensate()));
    m.put("compactor.prune.structured.widths", spec.widths().key());
    return m;
  }

  /**
   * FLAP's adaptive structure for the MLP channels: one streamed pass of the windows through the
   * unpruned model scores every layer's channels ({@link StructuredScores#channels}), each layer's
   * scores are standardised to z-scores, and the {@code round(channels * layers * width)} lowest of
   * all layers are removed, at most {@code width - 1} from a layer. Returns each layer's count.
   */
  private int[] allocateChannels(
      ModelDirectory model, ModelConfig config, List<int[]> windows, Progress progress)
      throws IOException {
    double[][] z = new double[config.numLayers()][];
    try (TensorSource src = model.weights();
        NDManager root = NDManager.newBaseManager(Device.cpu())) {
      Forward original = new Forward(config, "", root);
      NDManager hiddenScope = root.newSubManager();
      List<NDArray> hidden = embed(config, src, windows, hiddenScope);
      for (int i = 0; i < config.numLayers(); i++) {
        String prefix = Layout.layerPrefix(config, "", i);
        Map<String, float[]> w = new HashMap<>();
        for (Layout.Spec s : Layout.layer(config, i)) {
          w.put(s.name(), src.readFloats(prefix + s.name()));
        }
        InputStats st = new InputStats(config.intermediateSize(), 0);
        NDManager next = root.newSubManager();
        List<NDArray> outputs = pass(original, config, i, w, hidden, "mlp.down_proj", st, next);
        hiddenScope.close();
        hiddenScope = next;
        hidden = outputs;
        z[i] =
            standardised(
                StructuredScores.channels(
                    spec.importance(), st, w.get("mlp.down_proj.weight"), config.hiddenSize()));
        progress.report(
            0.0,
            "widths: layer " + (i + 1) + "/" + config.numLayers() + " channels scored (unpruned)");
      }
      hiddenScope.close();
    }
    int total =
        (int) Math.round(spec.channels() * config.numLayers() * (double) config.intermediateSize());
    int[] removed = lowestAcrossLayers(z, total);
    LOG.info("per-layer widths: removed channels per layer {}", java.util.Arrays.toString(removed));
    return removed;
  }

  /** {@code (s - mean) / std} of one layer's scores (all 0 when they are all equal). */
  static double[] standardised(double[] s) {
    double mean = 0;
    for (double v : s) {
      mean += v;
    }
    mean /= s.length;
    double var = 0;
    for (double v : s) {
      var += (v - mean) * (v - mean);
    }
    double std = Math.sqrt(var / s.length);
    double[] z = new double[s.length];
    for (int j = 0; j < s.length; j++) {
      z[j] = std > 0 ? (s[j] - mean) / std : 0;
    }
    return z;
  }

  /**
   * How many of each layer's entries fall among the {@code total} lowest of all layers' {@code z},
   * taken lowest first (ties by layer, then index), skipping a layer once only one of its entries
   * is left.
   */
  static int[] lowestAcrossLayers(double[][] z, int total) {
    int capacity = 0;
    List<long[]> order = new ArrayList<>();
    for (int l = 0; l < z.length; l++) {
      capacity += z[l].length - 1;
      for (int j = 0; j < z[l].length; j++) {
        order.add(new long[] {l, j});
      }
    }
    if (total < 1 || total > capacity) {
      throw new IllegalArgumentException(
          "channels removes "
              + total
              + " MLP channels in all; per-layer widths can remove 1.."
              + capacity
              + " (every layer keeps one)");
    }
    order.sort(
        (a, b) -> {
          int c = Double.compare(z[(int) a[0]][(int) a[1]], z[(int) b[0]][(int) b[1]]);
          return c != 0 ? c : a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]);
        });
    int[] removed = new int[z.length];
    int left = total;
    for (long[] e : order) {
      if (left == 0) {
        break;
      }
      int l = (int) e[0];
      if (removed[l] < z[l].length - 1) {
        removed[l]++;
        left--;
      }
    }
    return removed;
  }

  /** Cuts q/k/v rows and o_proj columns to {@code plan}; compensates o_proj's bias if asked. */
  private void cutHeads(
      ModelConfig c,
      ModelConfig after,
      int layer,
      Map<String, float[]> w,
      Map<String, DType> dtypes,
      HeadPlan plan,
      int[] removedQ,
      InputStats st) {
    int d = c.headDim();
    int h = c.hiddenSize();
    int qRows = c.numHeads() * d;
    int kvRows = c.numKvHeads() * d;
    double[] lost = null;
    if (spec.compensate()) {
      lost =
          LayerSurgery.lostMean(w.get("self_attn.o_proj.weight"), h, qRows, removedQ, d, st.mean());
    }
    rows(w, "self_attn.q_proj", qRows, h, plan.keptQuery(), d);
    rows(w, "self_attn.k_proj", kvRows, h, plan.keptKv(), d);
    rows(w, "self_attn.v_proj", kvRows, h, plan.keptKv(), d);
    w.put(
        "self_attn.o_proj.weight",
        LayerSurgery.keepColumns(w.get("self_attn.o_proj.weight"), h, qRows, plan.keptQuery(), d));
    if (lost != null) {
      addBiases(after, layer, w, dtypes, "self_attn.o_proj", lost);
    }
  }

  private void cutChannels(
      ModelConfig c,
      ModelConfig after,
      int layer,
      Map<String, float[]> w,
      Map<String, DType> dtypes,
      int[] kept,
      int[] removed,
      InputStats st) {
    int h = c.hiddenSize();
    int inter = c.intermediateSize();
    double[] lost = null;
    if (spec.compensate()) {
      lost = LayerSurgery.lostMean(w.get("mlp.down_proj.weight"), h, inter, removed, 1, st.mean());
    }
    rows(w, "mlp.gate_proj", inter, h, kept, 1);
    rows(w, "mlp.up_proj", inter, h, kept, 1);
    w.put(
        "mlp.down_proj.weight",
        LayerSurgery.keepColumns(w.get("mlp.down_proj.weight"), h, inter, kept, 1));
    if (lost != null) {
      addBiases(after, layer, w, dtypes, "mlp.down_proj", lost);
    }
  }

  /** Keeps row blocks of {@code linear}'s weight and, if it has one, of its bias. */
  private static void rows(
      Map<String, float[]> w, String linear, int rows, int cols, int[] kept, int block) {
    w.put(
        linear + ".weight",
        LayerSurgery.keepRows(w.get(linear + ".weight"), rows, cols, kept, block));
    float[] bias = w.get(linear + ".bias");
    if (bias != null) {
      w.put(linear + ".bias", LayerSurgery.keepRows(bias, rows, 1, kept, block));
    }
  }

  /**
   * Adds {@code lost} to {@code linear}'s bias, and writes zeros for every bias the pruned layout
   * {@code after} has that the input lacked (the other projections the HF flag gives a bias). The
   * bias is rounded to its dtype so the next layer is calibrated on the stored values.
   */
  private static void addBiases(
      ModelConfig after,
      int layer,
      Map<String, float[]> w,
      Map<String, DType> dtypes,
      String linear,
      double[] lost) {
    for (Layout.Spec s : Layout.layer(after, layer)) {
      if (s.name().endsWith(".bias") && !w.containsKey(s.name())) {
        w.put(s.name(), new float[Math.toIntExact(s.shape()[0])]);
        dtypes.put(s.name(), dtypes.get(s.name().replace(".bias", ".weight")));
      }
    }
    float[] bias = w.get(linear + ".bias");
    for (int r = 0; r < bias.length; r++) {
      bias[r] = (float) (bias[r] + lost[r]);
    }
    SparseGptPruner.roundTo(dtypes.get(linear + ".bias"), bias);
  }

  /** One pass of every batch through layer {@code i} collecting {@code linear}'s input. */
  private static InputStats observe(
      Forward f,
      ModelConfig c,
      int i,
      Map<String, float[]> w,
      List<NDArray> hidden,
      String linear,
      InputStats stats) {
    pass(f, c, i, w, hidden, linear, stats, null);
    return stats;
  }

  private static List<NDArray> pass(
      Forward f,
      ModelConfig c,
      int layer,
      Map<String, float[]> weights,
      List<NDArray> hidden,
      String observed,
      InputStats stats,
      NDManager keep) {
    List<NDArray> outputs = keep == null ? null : new ArrayList<>();
    NDManager parent = hidden.get(0).getManager();
    try (NDManager scope = parent.newSubManager()) {
      Map<String, NDArray> w = new HashMap<>();
      for (Layout.Spec s : Layout.layer(c, layer)) {
        float[] values = weights.get(s.name());
        if (values == null) {
          throw new IllegalStateException("layer " + layer + " lacks " + s.name());
        }
        w.put(s.name(), scope.create(values, new Shape(s.shape())));
      }
      for (NDArray x : hidden) {
        try (NDManager batch = scope.newSubManager()) {
          NDArray in = x.duplicate();
          in.attach(batch);
          NDArray out =
              f.layer(
                  batch,
                  layer,
                  w,
                  in,
                  observed == null
                      ? null
                      : (l, name, input) -> {
                        if (name.equals(observed)) {
                          stats.accumulate(input);
                        }
                      });
          if (outputs != null) {
            out.attach(keep);
            outputs.add(out);
          }
        }
      }
    }
    return outputs;
  }

  private static List<NDArray> embed(
      ModelConfig config, TensorSource source, List<int[]> samples, NDManager scope)
      throws IOException {
    return CalibrationCollector.embedBatches(config, source, samples, BATCH, scope);
  }
}
