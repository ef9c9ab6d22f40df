package dev.compactor.core.quant.codebook;

import ai.djl.Device;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.Codebook;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.calib.LinearStats;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Codebook-quantizes every compressible decoder linear of a checkpoint (the linears {@link
 * LayerwiseQuantizer} quantizes: every family but GPT-2, experts included, routers kept) and writes
 * a {@value Codebook#QUANT_METHOD} checkpoint (layout in {@link Codebook}); every other tensor is
 * copied as stored. The sensitivities come from {@link Sensitivity}: none, the Hessian diagonal
 * collected layer by layer by {@link CalibrationCollector} (each layer calibrated on the outputs of
 * the already-quantized layers before it, as GPTQ does), or the Fisher diagonal of the whole model
 * ({@link FisherSensitivity}). Progress once per layer.
 */
public final class CodebookModelQuantizer {

  /** Progress phase name, one unit per decoder layer. */
  public static final String PHASE = "codebook layers";

  /**
   * What was quantized.
   *
   * @param quantizedLinearBytes packed codes, F16 codebooks and shapes of the quantized linears
   * @param sourceLinearBytes the same linears as stored in the source
   * @param rows k-means problems solved (output rows)
   * @param convergedRows rows whose k-means converged before the iteration cap
   */
  public record Summary(
      int layers,
      int quantizedLinears,
      long quantizedParameters,
      long quantizedLinearBytes,
      long sourceLinearBytes,
      long rows,
      long convergedRows) {

    /** Stored bits per quantized weight, codebooks included. */
    public double bitsPerWeight() {
      return quantizedParameters == 0 ? 0 : 8.0 * quantizedLinearBytes / quantizedParameters;
    }
  }

  private CodebookModelQuantizer() {}

  /**
   * Quantizes {@code modelDir} into {@code outDir} (absent or without weights). {@code samples}
   * (equal-length token windows) are needed by the calibrated sensitivities.
   */
  public static Summary run(
      Path modelDir,
      CodebookSettings settings,
      List<int[]> samples,
      Path outDir,
      Map<String, String> metadata,
      ProgressListener progress)
      throws IOException {
    return run(modelDir, settings, samples, null, outDir, metadata, progress);
  }

  /**
   * Like {@link #run(Path, CodebookSettings, List, Path, Map, ProgressListener)}, with the Fisher
   * diagonal already computed ({@link #fisher}; null computes it here when the settings ask for
   * it), so several runs on one model and one text compute it once.
   */
  public static Summary run(
      Path modelDir,
      CodebookSettings settings,
      List<int[]> samples,
      Map<String, float[]> precomputedFisher,
      Path outDir,
      Map<String, String> metadata,
      ProgressListener progress)
      throws IOException {
    ModelConfig config = ModelConfig.read(modelDir);
    if (config.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: codebook quantization of " + config.modelType() + " (Conv1D layers)");
    }
    if (settings.sensitivity().calibrated() && (samples == null || samples.isEmpty())) {
      throw new IllegalArgumentException(
          "--sensitivity " + settings.sensitivity().id() + " needs calibration samples");
    }
    ModelDirectory source = ModelDirectory.open(modelDir);
    long[] counts = new long[6];
    try (TensorSource weights = source.weights();
        SafetensorsWriter out = new SafetensorsWriter(outDir, 4L << 30, metadata)) {
      LayerSink sink = new LayerSink(config, weights, out, counts, progress);
      switch (settings.sensitivity()) {
        case HESSIAN -> {
          CalibrationCollector collector =
              new CalibrationCollector(
                  config,
                  i -> LinearGroups.oneStage(config, i),
                  CalibrationCollector.Propagation.QUANTIZED,
                  false,
                  4);
          collector.run(
              weights,
              samples,
              new LayerQuantizer() {
                final Map<String, CodebookLinear> done = new LinkedHashMap<>();

                @Override
                public void quantize(
                    int layer,
                    List<String> linears,
                    Map<String, float[]> w,
                    Map<String, LinearStats> stats) {
                  for (String linear : linears) {
                    LinearStats s = stats.get(linear);
                    float[] sens = s == null || !s.calibrated() ? null : columnSensitivity(s);
                    done.put(linear, quantizeLinear(config, layer, linear, w, sens, settings));
                  }
                }

                @Override
                public void layerDone(int layer, Map<String, float[]> w) throws IOException {
                  sink.accept(layer, done);
                  done.clear();
                }
              });
        }
        case UNIFORM, FISHER -> {
          Map<String, float[]> fisher = Map.of();
          if (settings.sensitivity() == Sensitivity.FISHER) {
            fisher =
                precomputedFisher != null ? precomputedFisher : fisher(modelDir, samples, progress);
          }
          for (int i = 0; i < config.numLayers(); i++) {
            String prefix = Layout.layerPrefix(config, "", i);
            Map<String, float[]> w = new HashMap<>();
            Map<String, CodebookLinear> done = new LinkedHashMap<>();
            for (String linear : LinearGroups.compressible(config, i)) {
              String name = prefix + linear + ".weight";
              w.put(linear + ".weight", weights.readFloats(name));
              float[] sens = fisher.isEmpty() ? null : fisher.get(name);
              if (!fisher.isEmpty() && sens == null) {
                throw new IllegalStateException("no Fisher sensitivity for " + name);
              }
              done.put(linear, quantizeLinear(config, i, linear, w, sens, settings));
              w.clear();
            }
            sink.accept(i, done);
          }
        }
      }
      for (Layout.Spec s : Layout.globals(config, "")) {
        out.copy(weights, s.name());
      }
    }
    source.copyAuxiliaryFilesTo(outDir);
    Summary summary =
        new Summary(
            config.numLayers(),
            (int) counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5]);
    ObjectNode json = (ObjectNode) source.configJson().deepCopy();
    json.set("quantization_config", quantizationConfig(settings, summary));
    ModelDirectory.writeConfig(outDir, json);
    return summary;
  }

  /** The Fisher diagonal of every compressible decoder linear of {@code modelDir}. */
  public static Map<String, float[]> fisher(
      Path modelDir, List<int[]> samples, ProgressListener progress) throws IOException {
    try (Transformer model = Transformer.load(modelDir, Device.cpu())) {
      return FisherSensitivity.compute(
          model, samples, LayerwiseQuantizer::isDecoderLinear, progress);
    }
  }

  /** Diagonal of {@code X^T X} per input column, divided by the tokens seen. */
  static float[] columnSensitivity(LinearStats s) {
    double[] sq = s.sumOfSquares();
    float[] f = new float[sq.length];
    for (int j = 0; j < sq.length; j++) {
      f[j] = (float) (s.tokens() == 0 ? 0 : sq[j] / s.tokens());
    }
    return f;
  }

  private static CodebookLinear quantizeLinear(
      ModelConfig config,
      int layer,
      String linear,
      Map<String, float[]> w,
      float[] sensitivity,
      CodebookSettings settings) {
    int[] shape = LinearGroups.shape(config, layer, linear);
    CodebookLinear q =
        CodebookQuantizer.quantize(
            w.get(linear + ".weight"),
            sensitivity,
            shape[0],
            shape[1],
            settings.bits(),
            settings.maxIterations(),
            settings.exact());
    // later stages of the collector see the quantized weights
    w.put(linear + ".weight", q.dequantize());
    return q;
  }

  /** The {@code quantization_config} of a codebook checkpoint. */
  public static ObjectNode quantizationConfig(CodebookSettings settings, Summary summary) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    n.put("quant_method", Codebook.QUANT_METHOD);
    n.put("bits", settings.bits());
    n.put("sensitivity", settings.sensitivity().id());
    n.put("kmeans", settings.exact() ? "exact" : "lloyd");
    if (!settings.exact()) {
      n.put("max_iterations", settings.maxIterations());
    }
    n.put("codebook_dtype", "float16");
    n.put(
        "layout",
        "X.weight_shape I64[2], X.codebook F16[out, 2^bits], X.indices U8 rows LSB-first");
    n.put("loaded_by", "Compactor only (dequantized on load); not vLLM, llama.cpp or transformers");
    n.put("quantized_parameters", summary.quantizedParameters());
    n.put("quantized_weight_bytes", summary.quantizedLinearBytes());
    return n;
  }

  /** Writes each finished layer: codebook parts for quantized linears, all else as stored. */
  private static final class LayerSink {
    private final ModelConfig config;
    private final TensorSource weights;
    private final SafetensorsWriter out;
    private final long[] counts;
    private final ProgressListener progress;

    LayerSink(
        ModelConfig config,
        TensorSource weights,
        SafetensorsWriter out,
        long[] counts,
        ProgressListener progress) {
      this.config = config;
      this.weights = weights;
      this.out = out;
      this.counts = counts;
      this.progress = progress;
    }

    void accept(int layer, Map<String, CodebookLinear> quantized) throws IOException {
      String prefix = Layout.layerPrefix(config, "", layer);
      for (Layout.Spec s : Layout.layer(config, layer)) {
        String name = prefix + s.name();
        String linear =
            s.name().endsWith(".weight")
                ? s.name().substring(0, s.name().length() - ".weight".length())
                : null;
        CodebookLinear q = linear == null ? null : quantized.get(linear);
        if (q == null) {
          out.copy(weights, name);
          continue;
        }
        String p = prefix + linear;
        ByteBuffer shape = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        shape.putLong(q.rows()).putLong(q.cols()).flip();
        out.writeRaw(p + Codebook.SHAPE, DType.I64, new long[] {2}, shape);
        long[] cbShape = {q.rows(), 1L << q.bits()};
        out.write(p + Codebook.CODEBOOK, DType.F16, cbShape, q.codebook());
        byte[] packed = Codebook.pack(q.codes(), q.rows(), q.cols(), q.bits());
        out.writeRaw(
            p + Codebook.INDICES,
            DType.U8,
            new long[] {q.rows(), Codebook.bytesPerRow(q.cols(), q.bits())},
            ByteBuffer.wrap(packed));
        TensorInfo info = weights.info(name);
        counts[0]++;
        counts[1] += (long) q.rows() * q.cols();
        counts[2] += q.storedBytes();
        counts[3] += info.byteLength();
        counts[4] += q.rows();
        counts[5] += q.converged();
      }
      progress.onProgress(PHASE, layer + 1, config.numLayers());
    }
  }
}
