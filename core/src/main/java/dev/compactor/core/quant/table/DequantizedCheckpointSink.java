package dev.compactor.core.quant.table;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.ExpertTokens;
import dev.compactor.core.quant.export.QuantizedLayerSink;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes each finished layer of a {@link LayerwiseQuantizer} run as plain Hugging Face safetensors
 * holding the <em>dequantized</em> weights (exactly the values the quantized model computes with,
 * in the source's float type), so any tool — transformers, this project's evaluators — loads the
 * result; embeddings, final norm and head are copied byte for byte. {@code config.json} gains a
 * {@code quantization_config} saying what was done (quant_method {@value #QUANT_METHOD}).
 */
public final class DequantizedCheckpointSink implements QuantizedLayerSink, AutoCloseable {

  /** The config.json key, read by Hugging Face tools to learn how a model was quantized. */
  public static final String CONFIG_KEY = "quantization_config";

  /**
   * Tag in {@code quantization_config.quant_method}; unknown to transformers, which then loads the
   * (dequantized) weights as plain floats.
   */
  public static final String QUANT_METHOD = "compactor-dequantized";

  private final ModelDirectory source;
  private final ModelConfig config;
  private final TensorSource weights;
  private final SafetensorsWriter out;
  private final Path outDir;
  private boolean finished;

  /** Opens {@code sourceDir} for reading and {@code outDir} (absent or without weights). */
  public DequantizedCheckpointSink(Path sourceDir, Path outDir, Map<String, String> metadata)
      throws IOException {
    this.source = ModelDirectory.open(sourceDir);
    this.config = ModelConfig.read(sourceDir);
    this.weights = source.weights();
    this.outDir = outDir;
    this.out = SafetensorsWriter.planned(outDir, 4L << 30, metadata, plan(config, weights));
  }

  /**
   * Every tensor in the order this sink writes it (each layer's tensors, then the globals), so the
   * writer puts each shard's header first and the data is written once.
   */
  private static List<SafetensorsWriter.Planned> plan(ModelConfig config, TensorSource weights) {
    List<SafetensorsWriter.Planned> plan = new ArrayList<>();
    for (int layer = 0; layer < config.numLayers(); layer++) {
      String prefix = Layout.layerPrefix(config, "", layer);
      for (Layout.Spec s : Layout.layer(config, layer)) {
        String name = prefix + s.name();
        plan.add(
            new SafetensorsWriter.Planned(name, floatType(weights.info(name).dtype()), s.shape()));
      }
    }
    for (Layout.Spec s : Layout.globals(config, "")) {
      TensorInfo t = weights.info(s.name());
      plan.add(new SafetensorsWriter.Planned(s.name(), t.dtype(), t.shape()));
    }
    return plan;
  }

  @Override
  public void accept(int layer, Map<String, float[]> layerWeights, Map<String, QuantizedLinear> q)
      throws IOException {
    String prefix = Layout.layerPrefix(config, "", layer);
    for (Layout.Spec s : Layout.layer(config, layer)) {
      String name = prefix + s.name();
      TensorInfo info = weights.info(name);
      out.write(name, floatType(info.dtype()), s.shape(), layerWeights.get(s.name()));
    }
  }

  /**
   * Copies the global tensors and auxiliary files and writes config.json with {@code
   * quantizationConfig} under {@code quantization_config} and {@code extra} merged at the top.
   */
  public void finish(ObjectNode quantizationConfig, ObjectNode extra) throws IOException {
    for (Layout.Spec s : Layout.globals(config, "")) {
      out.copy(weights, s.name());
    }
    out.close();
    source.copyAuxiliaryFilesTo(outDir);
    ObjectNode json = (ObjectNode) source.configJson().deepCopy();
    json.set(CONFIG_KEY, quantizationConfig);
    if (extra != null) {
      json.setAll(extra);
    }
    ModelDirectory.writeConfig(outDir, json);
    finished = true;
  }

  /** The {@code quantization_config} describing {@code q} (weights stored dequantized). */
  public static ObjectNode quantizationConfig(
      WeightQuantization q, LayerwiseQuantizer.Summary summary) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    n.put("quant_method", QUANT_METHOD);
    n.put("method", q.method().id());
    n.put("bits", q.bits());
    n.put("group_size", q.groupSize() == 0 ? -1 : q.groupSize());
    n.put("symmetric", q.symmetric());
    n.put("weights_stored", "dequantized");
    n.put("quantized_parameters", summary.quantizedParameters());
    n.put("quantized_weight_bytes", summary.quantizedLinearBytes());
    if (!summary.expertTokens().isEmpty()) {
      // per (layer, expert): routed calibration tokens, and whether they were enough to calibrate
      ArrayNode experts = n.putArray("expert_calibration_tokens");
      for (ExpertTokens e : summary.expertTokens()) {
        ObjectNode x = experts.addObject();
        x.put("layer", e.layer());
        x.put("expert", e.expert());
        x.put("tokens", e.tokens());
        x.put("calibrated", e.calibrated());
      }
      n.put("uncalibrated_experts", summary.uncalibratedExperts().size());
    }
    return n;
  }

  private static DType floatType(DType d) {
    return d == DType.F16 || d == DType.BF16 ? d : DType.F32;
  }

  @Override
  public void close() throws IOException {
    try {
      if (!finished) {
        out.close();
      }
    } finally {
      weights.close();
    }
  }
}
