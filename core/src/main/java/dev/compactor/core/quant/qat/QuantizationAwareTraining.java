package dev.compactor.core.quant.qat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.Trainable;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.WeightTransform;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.CompressedTensorsWriter;
import dev.compactor.core.quant.export.QuantizedCheckpointWriter;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.WeightQuantization;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Quantization-aware training of a model's decoder linears: every linear computes through {@link
 * LsqFakeQuantizer} (symmetric integer grid, a learned step per output row and group), the latent
 * weights and the steps are trained by {@link Distiller} against the original model (KL + CE), and
 * the result is the integer grid {@code clamp(rint(w / s))} with the learned steps.
 *
 * <p>Training starts from round-to-nearest (latent = the original weights, steps = RTN's absmax
 * scales) or from GPTQ (latent = GPTQ's dequantized weights, steps = its scales), so before the
 * first step the fake-quantized model is exactly the RTN or GPTQ model. Either way the init's
 * dequantized checkpoint is written, to compare against. Pruned zeros of the original stay zero.
 */
public final class QuantizationAwareTraining implements AutoCloseable {

  /** Suffix of a step array's name among the trained parameters. */
  public static final String STEP_SUFFIX = "_qat_step";

  private final Path source;
  private final ModelConfig config;
  private final WeightQuantization grid;
  private final LsqFakeQuantizer fq;
  private final Transformer model;
  private final NDManager stepManager;
  private final Map<String, NDArray> steps = new LinkedHashMap<>();

  private QuantizationAwareTraining(
      Path source, ModelConfig config, WeightQuantization grid, Transformer model) {
    this.source = source;
    this.config = config;
    this.grid = grid;
    this.fq = new LsqFakeQuantizer(grid.bits(), grid.groupSize());
    this.model = model;
    this.stepManager = NDManager.newBaseManager(model.device());
  }

  /**
   * Quantizes {@code modelDir} with {@code init} (RTN or GPTQ, symmetric; GPTQ calibrates on {@code
   * calibration}), writes that model's dequantized checkpoint to {@code initDir}, and returns the
   * fake-quantized student starting from it.
   */
  public static QuantizationAwareTraining start(
      Path modelDir,
      WeightQuantization init,
      List<int[]> calibration,
      Path initDir,
      Device device,
      ProgressListener progress)
      throws IOException {
    if (init.method() != WeightQuantization.Method.RTN
        && init.method() != WeightQuantization.Method.GPTQ) {
      throw new UnsupportedOperationException(
          "not supported: qat init=" + init.method().id() + " (rtn or gptq)");
    }
    if (!init.symmetric()) {
      throw new UnsupportedOperationException("not supported yet: asymmetric qat grids");
    }
    ModelConfig config = ModelConfig.read(modelDir);
    if (config.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: qat of " + config.modelType() + " (mixture-of-experts layers)");
    }
    Map<String, QuantizedLinear> initial = new LinkedHashMap<>();
    try (DequantizedCheckpointSink sink =
        new DequantizedCheckpointSink(modelDir, initDir, Map.of())) {
      LayerwiseQuantizer.Summary s =
          LayerwiseQuantizer.run(
              modelDir,
              init,
              calibration,
              (layer, weights, quantized) -> {
                String prefix = Layout.layerPrefix(config, "", layer);
                quantized.forEach((linear, q) -> initial.put(prefix + linear + ".weight", q));
                sink.accept(layer, weights, quantized);
              },
              progress);
      sink.finish(DequantizedCheckpointSink.quantizationConfig(init, s), null);
    }
    boolean gptq = init.method() == WeightQuantization.Method.GPTQ;
    Transformer model = Transformer.load(gptq ? initDir : modelDir, device);
    QuantizationAwareTraining qat = new QuantizationAwareTraining(modelDir, config, init, model);
    try (TensorSource original = Checkpoints.open(modelDir)) {
      for (Map.Entry<String, QuantizedLinear> e : initial.entrySet()) {
        QuantizedLinear q = e.getValue();
        NDArray latent = model.parameters().get(e.getKey());
        if (gptq) {
          latent.set(
              keepOffZero(latent.toFloatArray(), original.readFloats(e.getKey()), q).array());
        }
        NDArray step = qat.stepManager.create(q.scales(), new Shape(q.rows(), q.groups()));
        qat.steps.put(e.getKey(), step);
      }
    }
    return qat;
  }

  /**
   * GPTQ's dequantized weight with every exact zero the original did not have moved to {@code ±s /
   * 1000} (same code, 0): the distiller keeps exact zeros of decoder linears at zero as pruned, and
   * only the original's zeros are pruned.
   */
  private static FloatBuffer keepOffZero(float[] latent, float[] original, QuantizedLinear q) {
    for (int i = 0; i < latent.length; i++) {
      if (latent[i] == 0f && original[i] != 0f) {
        int r = i / q.cols();
        float s = q.scales()[r * q.groups() + q.group(i % q.cols())];
        latent[i] = Math.copySign(s / 1000f, original[i]);
      }
    }
    return FloatBuffer.wrap(latent);
  }

  /** The grid trained to (method: the init's). */
  public WeightQuantization grid() {
    return grid;
  }

  /** The student: its latent weights are the model's decoder linear weights. */
  public Transformer model() {
    return model;
  }

  /** Learned steps by linear weight name, {@code [rows, groups]}. */
  public Map<String, NDArray> steps() {
    return steps;
  }

  /** What every pass of the student computes with: the fake-quantized decoder linears. */
  public WeightTransform transform() {
    Map<Integer, Map<String, NDArray>> byLayer = new LinkedHashMap<>();
    for (int i = 0; i < config.numLayers(); i++) {
      Map<String, NDArray> layer = new LinkedHashMap<>();
      String prefix = model.layerPrefix(i);
      for (String linear : LinearGroups.compressible(config, i)) {
        layer.put(linear + ".weight", steps.get(prefix + linear + ".weight"));
      }
      byLayer.put(i, layer);
    }
    return (layer, name, stored, scope) -> {
      NDArray step = byLayer.get(layer).get(name);
      return step == null ? stored : fq.apply(stored, step, scope);
    };
  }

  /** The latent weights and the steps, trained through {@link #transform()}. */
  public Trainable trainable() {
    Map<String, NDArray> params = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : steps.entrySet()) {
      params.put(e.getKey(), model.parameters().get(e.getKey()));
    }
    for (Map.Entry<String, NDArray> e : steps.entrySet()) {
      params.put(e.getKey() + STEP_SUFFIX, e.getValue());
    }
    return Trainable.through(model, params, transform());
  }

  /** Trains the latent weights and steps against {@code teacher} on {@code windows}. */
  public DistillationReport train(
      CausalLM teacher, List<int[]> windows, DistillationSpec spec, CheckpointSink sink)
      throws IOException {
    return train(teacher, windows, spec, sink, null);
  }

  /**
   * As {@link #train(CausalLM, List, DistillationSpec, CheckpointSink)}, telling {@code progress}
   * after every step (null: nobody); an exception thrown by {@code progress} stops the training.
   */
  public DistillationReport train(
      CausalLM teacher,
      List<int[]> windows,
      DistillationSpec spec,
      CheckpointSink sink,
      Distiller.Progress progress)
      throws IOException {
    return new Distiller(spec, sink, dev.compactor.core.distill.DistillationDepth.NONE, progress)
        .distill(teacher, trainable(), windows);
  }

  /** The integer grid of every decoder linear now, by weight name. */
  public Map<String, QuantizedLinear> export() {
    Map<String, QuantizedLinear> out = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : steps.entrySet()) {
      NDArray w = model.parameters().get(e.getKey());
      int rows = (int) w.getShape().get(0);
      int cols = (int) w.getShape().get(1);
      out.put(e.getKey(), fq.export(w.toFloatArray(), e.getValue().toFloatArray(), rows, cols));
    }
    return out;
  }

  /**
   * Writes the exported grid dequantized (exactly what the fake-quantized model computed with, in
   * the source's float type) as a Hugging Face directory loadable anywhere; {@code config.json}'s
   * quantization_config says it is QAT weights stored dequantized.
   */
  public void writeDequantized(Path out, ObjectNode extraConfig) throws IOException {
    Map<String, QuantizedLinear> grid = export();
    try (DequantizedCheckpointSink sink = new DequantizedCheckpointSink(source, out, Map.of())) {
      for (int i = 0; i < config.numLayers(); i++) {
        String prefix = model.layerPrefix(i);
        Map<String, float[]> weights = new LinkedHashMap<>();
        Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();
        for (Layout.Spec s : Layout.layer(config, i)) {
          QuantizedLinear q = grid.get(prefix + s.name());
          weights.put(
              s.name(),
              q != null
                  ? q.dequantize()
                  : model.parameters().get(prefix + s.name()).toFloatArray());
          if (q != null) {
            quantized.put(s.name().substring(0, s.name().length() - ".weight".length()), q);
          }
        }
        sink.accept(i, weights, quantized);
      }
      sink.finish(quantizationConfig("dequantized"), extraConfig);
    }
  }

  /**
   * Writes the exported grid as a compressed-tensors pack-quantized checkpoint (4 and 8 bits; the
   * codes and learned steps as they are, steps stored in {@code floatType}).
   */
  public void writeCompressedTensors(Path out, DType floatType) throws IOException {
    if (grid.bits() != 4 && grid.bits() != 8) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + grid.bits()
              + "-bit export to compressed-tensors (4 and 8 are); write the dequantized"
              + " checkpoint to evaluate it");
    }
    Map<String, QuantizedLinear> exported = export();
    CompressedTensorsScheme scheme =
        new CompressedTensorsScheme(
            CompressedTensorsScheme.Format.PACK_QUANTIZED,
            grid.bits(),
            true,
            grid.groupSize(),
            null);
    try (TensorSource src = Checkpoints.open(source);
        CompressedTensorsWriter writer =
            new CompressedTensorsWriter(
                out, scheme, floatType, Map.of("quantizer", "compactor-qat"))) {
      QuantizedCheckpointWriter sink = new QuantizedCheckpointWriter(config, writer);
      for (int i = 0; i < config.numLayers(); i++) {
        String prefix = model.layerPrefix(i);
        Map<String, float[]> weights = new LinkedHashMap<>();
        Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();
        for (Layout.Spec s : Layout.layer(config, i)) {
          QuantizedLinear q = exported.get(prefix + s.name());
          if (q != null) {
            quantized.put(s.name().substring(0, s.name().length() - ".weight".length()), q);
          } else {
            weights.put(s.name(), model.parameters().get(prefix + s.name()).toFloatArray());
          }
        }
        sink.accept(i, weights, quantized);
      }
      sink.finish(src, source, out);
    }
  }

  /**
   * The fraction of ggml's 32-value blocks of {@code grid} that ggml's Q4_0 (4 bits) or Q8_0 (8
   * bits) rule re-derives exactly from the dequantized weights, up to the fp16 rounding of the
   * step: Q4_0 takes {@code d = max / -8} from the value of largest magnitude, so a block keeps the
   * learned step only if it holds code -8; Q8_0 takes {@code d = amax / 127}, so only if its
   * largest code magnitude is 127 and it holds no -128. Other blocks are re-quantized on ggml's own
   * grid.
   */
  public static double ggmlExactBlockFraction(Map<String, QuantizedLinear> grid) {
    long blocks = 0;
    long exact = 0;
    for (QuantizedLinear q : grid.values()) {
      if (q.bits() != 4 && q.bits() != 8) {
        throw new IllegalArgumentException("ggml blocks hold 4 or 8 bits, found " + q.bits());
      }
      if (q.cols() % 32 != 0 || q.groupSize() % 32 != 0 || q.gIdx() != null) {
        throw new IllegalArgumentException("groups must be whole ggml blocks of 32 columns");
      }
      int half = 1 << (q.bits() - 1);
      for (int r = 0; r < q.rows(); r++) {
        for (int b = 0; b < q.cols(); b += 32) {
          int min = Integer.MAX_VALUE;
          int amax = 0;
          for (int c = b; c < b + 32; c++) {
            int v = q.code(r, c) - half;
            min = Math.min(min, v);
            amax = Math.max(amax, Math.abs(v));
          }
          blocks++;
          boolean kept = q.bits() == 4 ? min == -8 : amax == 127 && min != -128;
          if (kept) {
            exact++;
          }
        }
      }
    }
    return blocks == 0 ? 0 : (double) exact / blocks;
  }

  /** The quantization_config of a QAT checkpoint whose linears are stored as {@code stored}. */
  public ObjectNode quantizationConfig(String stored) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    n.put("quant_method", DequantizedCheckpointSink.QUANT_METHOD);
    n.put("method", "qat");
    n.put("init", grid.method().id());
    n.put("bits", grid.bits());
    n.put("group_size", grid.groupSize() == 0 ? -1 : grid.groupSize());
    n.put("symmetric", true);
    n.put("weights_stored", stored);
    n.put("fake_quantized", true);
    // no runtime format here stores a 2- or 3-bit grid: such a checkpoint is for evaluation only
    n.put("evaluation_only", grid.bits() != 4 && grid.bits() != 8);
    return n;
  }

  @Override
  public void close() {
    stepManager.close();
    model.close();
  }
}
