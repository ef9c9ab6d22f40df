package dev.compactor.core.quant.table;

import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.Fp8E4M3;
import dev.compactor.core.quant.Nf4;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.awq.AwqConfig;
import dev.compactor.core.quant.awq.AwqLayerQuantizer;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.ExpertTokens;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.export.QuantizedLayerSink;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.gptq.GptqConfig;
import dev.compactor.core.quant.gptq.GptqLayerQuantizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Quantizes the decoder linears of a checkpoint (every family but GPT-2: Llama, Mistral, Qwen2,
 * Qwen3, Phi-3 with its fused projections as the linears they are, Mixtral and Qwen2-MoE/Qwen3-MoE
 * expert by expert, Qwen2-MoE's shared expert as a dense MLP; the router and {@code
 * shared_expert_gate} stay in full precision) one layer at a time with any {@link
 * WeightQuantization.Method} and hands each finished layer to a {@link QuantizedLayerSink} (which
 * writes a dequantized Hugging Face checkpoint, a compressed-tensors checkpoint, or both). GPTQ and
 * AWQ run through {@link CalibrationCollector} with h/gptq's layer quantizers; RTN, NF4 and FP8
 * need no calibration and stream the weights directly. Reports progress once per layer and the size
 * the quantized linears take as stored (codes, fp16 scales, zero points, group indices).
 */
public final class LayerwiseQuantizer {

  /** Progress phase name, one unit per decoder layer. */
  public static final String PHASE = "quantize layers";

  /**
   * What was quantized.
   *
   * @param layers decoder layers processed
   * @param quantizedLinears linear weights quantized
   * @param quantizedParameters their element count
   * @param quantizedLinearBytes their stored size
   * @param expertTokens GPTQ/AWQ on a mixture of experts: the routed calibration tokens of every
   *     (layer, expert), and which were too few to calibrate on (those were rounded to nearest /
   *     left unscaled); empty otherwise
   */
  public record Summary(
      int layers,
      int quantizedLinears,
      long quantizedParameters,
      long quantizedLinearBytes,
      List<ExpertTokens> expertTokens) {

    public Summary {
      expertTokens = List.copyOf(expertTokens);
    }

    /** Experts quantized without calibration statistics (too few routed tokens). */
    public List<ExpertTokens> uncalibratedExperts() {
      return expertTokens.stream().filter(e -> !e.calibrated()).toList();
    }

    /** Bits per quantized weight, scales and zero points included. */
    public double bitsPerWeight() {
      return quantizedParameters == 0 ? 0 : 8.0 * quantizedLinearBytes / quantizedParameters;
    }
  }

  private LayerwiseQuantizer() {}

  /** The GPTQ settings used here: 1% dampening, blocks of 128, static act-order groups. */
  public static GptqConfig gptqConfig(WeightQuantization q) {
    return new GptqConfig(
        q.bits(), q.symmetric(), q.groupSize(), 0.01, 128, GptqConfig.ActOrder.WEIGHT);
  }

  /** The AWQ settings used here: AutoAWQ's defaults (grid of 20 scales, clip search). */
  public static AwqConfig awqConfig(WeightQuantization q) {
    return new AwqConfig(q.bits(), q.symmetric(), q.groupSize(), 20, true, 20, 0.5);
  }

  /**
   * Quantizes {@code modelDir} with {@code q}; {@code samples} (equal-length token windows) are
   * needed by the calibrated methods and ignored by the others.
   */
  public static Summary run(
      Path modelDir,
      WeightQuantization q,
      List<int[]> samples,
      QuantizedLayerSink sink,
      ProgressListener progress)
      throws IOException {
    ModelConfig config = ModelConfig.read(modelDir);
    if (config.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: quantizing " + config.modelType() + " (Conv1D layers)");
    }
    q.checkFits(config.linearInputWidths());
    long[] counts = new long[3];
    List<ExpertTokens> experts = List.of();
    int layers = config.numLayers();
    QuantizedLayerSink counting =
        (layer, weights, quantized) -> {
          for (QuantizedLinear l : quantized.values()) {
            counts[0]++;
            counts[1] += (long) l.rows() * l.cols();
            counts[2] += storedBytes(l);
          }
          sink.accept(layer, weights, quantized);
          progress.onProgress(PHASE, layer + 1, layers);
        };
    try (TensorSource source = Checkpoints.open(modelDir)) {
      switch (q.method()) {
        case GPTQ, AWQ -> {
          if (samples == null || samples.isEmpty()) {
            throw new IllegalArgumentException(q.method().id() + " needs calibration samples");
          }
          CalibrationCollector collector;
          if (q.method() == WeightQuantization.Method.GPTQ) {
            collector =
                new CalibrationCollector(
                    config,
                    i -> LinearGroups.trueSequential(config, i),
                    CalibrationCollector.Propagation.QUANTIZED,
                    true,
                    4);
            collector.run(source, samples, new GptqLayerQuantizer(gptqConfig(q), counting));
          } else {
            collector =
                new CalibrationCollector(
                    config,
                    i -> LinearGroups.oneStage(config, i),
                    CalibrationCollector.Propagation.ORIGINAL,
                    true,
                    4);
            collector.run(
                source, samples, new AwqLayerQuantizer(config, awqConfig(q), true, counting));
          }
          experts = collector.expertTokens();
        }
        default -> {
          for (int i = 0; i < layers; i++) {
            Map<String, float[]> weights = new LinkedHashMap<>();
            String prefix = Layout.layerPrefix(config, "", i);
            for (Layout.Spec s : Layout.layer(config, i)) {
              weights.put(s.name(), source.readFloats(prefix + s.name()));
            }
            Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();
            for (String linear : LinearGroups.compressible(config, i)) {
              Layout.Spec spec = spec(config, i, linear + ".weight");
              int rows = (int) spec.shape()[0];
              int cols = (int) spec.shape()[1];
              float[] w = weights.get(linear + ".weight");
              QuantizedTensor t = roundToGrid(q, w, rows, cols);
              weights.put(linear + ".weight", t.dequantize());
              if (t.format() == QuantizedTensor.Format.INT) {
                quantized.put(linear, QuantizedLinear.of(t));
              } else {
                counts[0]++;
                counts[1] += w.length;
                counts[2] += storedBytes(t);
              }
            }
            counting.accept(i, weights, quantized);
          }
        }
      }
    }
    return new Summary(layers, (int) counts[0], counts[1], counts[2], experts);
  }

  /** One weight through RTN, NF4 or FP8. */
  static QuantizedTensor roundToGrid(WeightQuantization q, float[] w, int rows, int cols) {
    return switch (q.method()) {
      case RTN -> new RtnQuantizer(q.bits(), q.symmetric(), q.groupSize()).quantize(w, rows, cols);
      case NF4 -> Nf4.quantize(w, rows, cols, q.groupSize());
      case FP8 -> Fp8E4M3.quantize(w, rows, cols, true);
      default -> throw new IllegalStateException(q.method() + " is calibrated");
    };
  }

  /**
   * Whether {@code name} is a compressible decoder linear weight: the {@code *_proj} linears of
   * every Llama-family checkpoint (Qwen3 and Phi-3, whose fused {@code qkv_proj} and {@code
   * gate_up_proj} end the same way, included; so are Qwen MoE's experts and shared expert) and
   * Mixtral's experts ({@code block_sparse_moe.experts.E.w1|w2|w3}); never the router ({@code
   * block_sparse_moe.gate}, {@code mlp.gate}) nor {@code mlp.shared_expert_gate}.
   */
  public static boolean isDecoderLinear(String name) {
    return name.startsWith("model.layers.")
        && (name.endsWith("_proj.weight") || MIXTRAL_EXPERT.matcher(name).matches());
  }

  private static final Pattern MIXTRAL_EXPERT =
      Pattern.compile(
          "model\\.layers\\.\\d+\\.block_sparse_moe\\.experts\\.\\d+\\.w[123]\\.weight");

  /** Packed codes, fp16 scales, packed zero points and int32 group indices. */
  public static long storedBytes(QuantizedLinear l) {
    long n = (long) l.rows() * l.cols();
    long groups = (long) l.rows() * l.groups();
    long bytes = n * l.bits() / 8 + 2 * groups;
    if (!l.symmetric()) {
      bytes += groups * l.bits() / 8;
    }
    if (l.gIdx() != null) {
      bytes += 4L * l.cols();
    }
    return bytes;
  }

  /** Codes as packed plus fp16 scales (NF4 and FP8 have no zero points). */
  static long storedBytes(QuantizedTensor t) {
    return t.packedCodes().length
        + 2L * t.scales().length
        + (t.zeroPoints() == null ? 0 : t.zeroPoints().length);
  }

  private static Layout.Spec spec(ModelConfig config, int layer, String name) {
    for (Layout.Spec s : Layout.layer(config, layer)) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    throw new IllegalStateException("no layer tensor " + name);
  }
}
