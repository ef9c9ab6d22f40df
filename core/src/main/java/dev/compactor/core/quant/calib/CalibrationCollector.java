package dev.compactor.core.quant.calib;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ActivationObserver;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs calibration token windows through a checkpoint one decoder layer at a time and lets a {@link
 * LayerQuantizer} quantize each layer from the statistics ({@link LinearStats}) of its linears'
 * inputs, the way GPTQ and AWQ calibrate: only the token embedding, the current layer's weights and
 * the hidden states of the windows ({@code samples x seq x hidden} fp32) are in memory, never the
 * whole model. Each layer runs through the model's own forward ({@link Forward#layer}), so every
 * family it runs is calibrated with its real arithmetic: Llama, Mistral (sliding window), Qwen2,
 * Qwen3 (q/k norms), Phi-3 (fused projections), Mixtral (experts see only their routed tokens) and
 * Qwen2-MoE / Qwen3-MoE (dense and sparse layers mixed; Qwen2-MoE's shared expert sees every
 * token).
 *
 * <p>{@link Propagation#QUANTIZED} feeds layer {@code i+1} the outputs of the already-quantized
 * layer {@code i} (GPTQ); {@link Propagation#ORIGINAL} feeds it the full-precision outputs
 * (AutoAWQ). Within a layer the linears are quantized in the layer's {@code stages}: each stage
 * re-runs the layer with the earlier stages already quantized and collects the statistics of its
 * own linears (GPTQ's "true sequential" order is {@link LinearGroups#trueSequential}; AWQ uses
 * {@link LinearGroups#oneStage}, all scales from the unmodified layer).
 *
 * <p>Experts: an expert's statistics come from the tokens routed to it. One that saw fewer than
 * {@link LinearGroups#minExpertTokens} tokens gets {@link LinearStats#tooFewTokens} instead, and
 * every (layer, expert) count is in {@link #expertTokens()}. GPT-2 throws "not supported yet".
 */
public final class CalibrationCollector {

  /** Which outputs become the next layer's calibration inputs. */
  public enum Propagation {
    QUANTIZED,
    ORIGINAL
  }

  private static final Logger LOG = LoggerFactory.getLogger(CalibrationCollector.class);

  private final ModelConfig config;
  private final IntFunction<List<List<String>>> stages;
  private final Propagation propagation;
  private final boolean withGram;
  private final int batchSize;
  private final List<Map<String, LinearGroups.Group>> groupOf = new ArrayList<>();
  private final Map<String, ExpertTokens> experts = new LinkedHashMap<>();

  /**
   * @param stages per layer, groups of linear names (relative to the layer), quantized in this
   *     order; e.g. {@code i -> LinearGroups.trueSequential(config, i)}
   * @param withGram collect {@code X^T X} (GPTQ and AWQ need it; imatrix alone does not)
   * @param batchSize windows per layer pass (bounds the attention activations' memory)
   */
  public CalibrationCollector(
      ModelConfig config,
      IntFunction<List<List<String>>> stages,
      Propagation propagation,
      boolean withGram,
      int batchSize) {
    config.requireDenseLinears();
    if (config.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: layer-wise calibration of "
              + config.modelType()
              + " (Conv1D layers)");
    }
    if (batchSize <= 0) {
      throw new IllegalArgumentException("batchSize must be positive, found " + batchSize);
    }
    for (int i = 0; i < config.numLayers(); i++) {
      List<String> known = LinearGroups.compressible(config, i);
      for (List<String> stage : stages.apply(i)) {
        for (String linear : stage) {
          if (!known.contains(linear)) {
            throw new IllegalArgumentException(
                "unknown linear '" + linear + "' in layer " + i + "; expected one of " + known);
          }
        }
      }
      Map<String, LinearGroups.Group> groups = new HashMap<>();
      for (LinearGroups.Group g : LinearGroups.of(config, i)) {
        for (String linear : g.linears()) {
          groups.put(linear, g);
        }
      }
      groupOf.add(groups);
    }
    this.config = config;
    this.stages = stages;
    this.propagation = propagation;
    this.withGram = withGram;
    this.batchSize = batchSize;
  }

  /** Routed token counts of every expert of every layer run so far, by layer then expert. */
  public List<ExpertTokens> expertTokens() {
    return List.copyOf(experts.values());
  }

  /**
   * Calibrates every decoder layer of {@code source} on {@code samples} (token windows of equal
   * length), calling {@code quantizer} per stage and {@link LayerQuantizer#layerDone} per layer.
   */
  public void run(TensorSource source, List<int[]> samples, LayerQuantizer quantizer)
      throws IOException {
    if (samples.isEmpty()) {
      throw new IllegalArgumentException("calibration needs at least one token window");
    }
    int seq = samples.get(0).length;
    for (int[] s : samples) {
      if (s.length != seq) {
        throw new IllegalArgumentException(
            "calibration windows must have equal length: " + seq + " and " + s.length);
      }
    }
    if (seq > config.maxPositions()) {
      throw new IllegalArgumentException(
          "calibration windows of " + seq + " tokens exceed the context " + config.maxPositions());
    }
    try (NDManager root = NDManager.newBaseManager(Device.cpu())) {
      Forward forward = new Forward(config, "", root);
      NDManager hiddenScope = root.newSubManager();
      List<NDArray> hidden = embed(source, samples, hiddenScope);
      for (int i = 0; i < config.numLayers(); i++) {
        Map<String, float[]> weights = readLayer(source, i);
        NDManager next = root.newSubManager();
        List<NDArray> outputs = null;
        for (List<String> stage : stages.apply(i)) {
          Map<String, LinearStats> stats = new HashMap<>();
          boolean keepOutputs = outputs == null && propagation == Propagation.ORIGINAL;
          List<NDArray> out =
              pass(forward, i, weights, hidden, stage, stats, keepOutputs ? next : null);
          if (keepOutputs) {
            outputs = out;
          }
          checkExperts(i, stage, stats);
          quantizer.quantize(i, stage, weights, stats);
        }
        if (outputs == null) {
          outputs = pass(forward, i, weights, hidden, List.of(), new HashMap<>(), next);
        }
        quantizer.layerDone(i, weights);
        hiddenScope.close();
        hiddenScope = next;
        hidden = outputs;
        LOG.info("calibrated layer {}/{}", i + 1, config.numLayers());
      }
      hiddenScope.close();
    }
  }

  /**
   * One pass of every batch through layer {@code layer}; outputs kept in {@code keep} when
   * non-null. Linears of one group read one input, so they share one {@link LinearStats}, filled
   * when the forward shows the group's first linear.
   */
  private List<NDArray> pass(
      Forward forward,
      int layer,
      Map<String, float[]> weights,
      List<NDArray> hidden,
      List<String> observed,
      Map<String, LinearStats> stats,
      NDManager keep) {
    List<NDArray> outputs = keep == null ? null : new ArrayList<>();
    NDManager parent = hidden.get(0).getManager();
    ActivationObserver observer =
        (i, linear, input) -> {
          LinearGroups.Group g = groupOf.get(layer).get(linear);
          if (g == null || !g.linears().get(0).equals(linear)) {
            return;
          }
          LinearStats shared = null;
          for (String member : g.linears()) {
            if (observed.contains(member)) {
              if (shared == null) {
                shared =
                    stats.computeIfAbsent(
                        member, k -> new LinearStats((int) input.getShape().get(1), withGram));
              }
              stats.put(member, shared);
            }
          }
          if (shared != null) {
            shared.accumulate(input);
          }
        };
    try (NDManager scope = parent.newSubManager()) {
      Map<String, NDArray> w = new HashMap<>();
      for (Layout.Spec s : Layout.layer(config, layer)) {
        w.put(s.name(), scope.create(weights.get(s.name()), new Shape(s.shape())));
      }
      for (NDArray x : hidden) {
        try (NDManager batch = scope.newSubManager()) {
          NDArray in = x.duplicate();
          in.attach(batch);
          NDArray out = forward.layer(batch, layer, w, in, observed.isEmpty() ? null : observer);
          if (outputs != null) {
            out.attach(keep);
            outputs.add(out);
          }
        }
      }
    }
    return outputs;
  }

  /**
   * Records the routed tokens of every expert in {@code stage} and replaces the statistics of one
   * below {@link LinearGroups#minExpertTokens} (or never routed to) by {@link
   * LinearStats#tooFewTokens}.
   */
  private void checkExperts(int layer, List<String> stage, Map<String, LinearStats> stats) {
    if (!config.sparseLayer(layer)) {
      return;
    }
    long min = LinearGroups.minExpertTokens(config);
    for (int e = 0; e < config.numExperts(); e++) {
      List<String> linears = new ArrayList<>();
      for (Layout.ExpertProj p : Layout.ExpertProj.values()) {
        String name = Layout.expert(config, e, p);
        if (stage.contains(name)) {
          linears.add(name);
        }
      }
      if (linears.isEmpty()) {
        continue;
      }
      long tokens = 0;
      for (String name : linears) {
        LinearStats s = stats.get(name);
        tokens = Math.max(tokens, s == null ? 0 : s.tokens());
      }
      boolean calibrated = tokens >= min;
      experts.put(layer + "/" + e, new ExpertTokens(layer, e, tokens, calibrated));
      if (!calibrated) {
        LOG.warn(
            "layer {} expert {}: {} routed calibration tokens, fewer than {}; not calibrated",
            layer,
            e,
            tokens,
            min);
        for (String name : linears) {
          LinearStats s = stats.get(name);
          stats.put(
              name,
              LinearStats.tooFewTokens(
                  LinearGroups.shape(config, layer, name)[1], s == null ? 0 : s.tokens()));
        }
      }
    }
  }

  private Map<String, float[]> readLayer(TensorSource source, int i) throws IOException {
    String prefix = Layout.layerPrefix(config, "", i);
    Map<String, float[]> weights = new LinkedHashMap<>();
    for (Layout.Spec s : Layout.layer(config, i)) {
      weights.put(s.name(), source.readFloats(prefix + s.name()));
    }
    return weights;
  }

  private List<NDArray> embed(TensorSource source, List<int[]> samples, NDManager scope)
      throws IOException {
    return embedBatches(config, source, samples, batchSize, scope);
  }

  /**
   * The token embeddings of {@code samples} (equal-length windows of token ids), {@code batchSize}
   * windows per array of shape {@code [n, seq, hidden]}, living in {@code scope}: the hidden states
   * every layer-by-layer calibration starts from. The embedding table is read once and freed.
   *
   * @throws IllegalArgumentException for a token id outside the vocabulary
   */
  public static List<NDArray> embedBatches(
      ModelConfig config, TensorSource source, List<int[]> samples, int batchSize, NDManager scope)
      throws IOException {
    int seq = samples.get(0).length;
    List<NDArray> batches = new ArrayList<>();
    try (NDManager tableScope = scope.newSubManager()) {
      NDArray table =
          tableScope.create(
              source.readFloats("model.embed_tokens.weight"),
              new Shape(config.vocabSize(), config.hiddenSize()));
      for (int b = 0; b < samples.size(); b += batchSize) {
        int n = Math.min(batchSize, samples.size() - b);
        long[] ids = new long[n * seq];
        for (int k = 0; k < n; k++) {
          for (int t = 0; t < seq; t++) {
            int id = samples.get(b + k)[t];
            if (id < 0 || id >= config.vocabSize()) {
              throw new IllegalArgumentException(
                  "token id " + id + " outside the vocabulary of " + config.vocabSize());
            }
            ids[k * seq + t] = id;
          }
        }
        NDArray idx = tableScope.create(ids, new Shape(n, seq)).toType(DataType.INT64, false);
        NDArray x = Embedding.embedding(idx, table, SparseFormat.DENSE).head();
        x.attach(scope);
        batches.add(x);
      }
    }
    return batches;
  }
}
