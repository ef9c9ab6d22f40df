package dev.compactor.core.quant.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.Codebook;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.awq.AwqModelQuantizer;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.CompressedTensorsWriter;
import dev.compactor.core.quant.export.QuantizedCheckpointWriter;
import dev.compactor.core.quant.export.QuantizedLayerSink;
import dev.compactor.core.quant.gptq.GptqModelQuantizer;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One quantization run over a Hugging Face checkpoint, the same for the {@code quantize} command
 * and the quantization service: the decoder linears go through RTN, GPTQ, AWQ, FP8 or NF4 one layer
 * at a time ({@link LayerwiseQuantizer}) into a dequantized Hugging Face directory and/or a
 * compressed-tensors directory, and GGUF files are written from the source weights by ggml's block
 * quantizers, weighted by an importance matrix of the calibration text when asked.
 *
 * <p>Every config.json written carries {@code compactor_provenance}: the caller's origin (command
 * line, or job and recipe), the settings, the calibration text's source, hash and sampling, and the
 * SHA-256 of every input file. Nothing time- or path-dependent is added here, so the same input and
 * settings give byte-identical output.
 */
public final class QuantizationPipeline {

  /** The config.json key holding the provenance object. */
  public static final String PROVENANCE_KEY = "compactor_provenance";

  private static final ObjectMapper JSON = new ObjectMapper();

  private QuantizationPipeline() {}

  /** Progress of a run: the fraction done (0..1) and what just happened. */
  public interface Progress {
    Progress NONE = (fraction, message) -> {};

    void report(double fraction, String message);
  }

  /**
   * The calibration text and how it is sampled.
   *
   * @param text the text and its provenance
   * @param samples windows drawn
   * @param seqLen tokens per window (capped at the model's context length)
   * @param seed seed of the window offsets
   */
  public record Calibration(CalibrationText text, int samples, int seqLen, long seed) {
    public Calibration {
      if (text == null) {
        throw new IllegalArgumentException("calibration text must be given");
      }
      if (samples <= 0 || seqLen <= 1) {
        throw new IllegalArgumentException(
            "calibration needs samples > 0 and seq_len > 1, found " + samples + ", " + seqLen);
      }
    }
  }

  /**
   * What to write.
   *
   * @param safetensors directory for the dequantized Hugging Face checkpoint, or null
   * @param compressedTensors directory for the compressed-tensors checkpoint, or null
   * @param gguf GGUF file types to export, each with llama-quantize's mix (may be empty)
   * @param ggufDir where the {@code model-<type>.gguf} files go (needed when {@code gguf} is not
   *     empty)
   */
  public record Outputs(
      Path safetensors, Path compressedTensors, List<LlamaFileType> gguf, Path ggufDir) {
    public Outputs {
      gguf = List.copyOf(gguf);
      if (!gguf.isEmpty() && ggufDir == null) {
        throw new IllegalArgumentException("gguf exports need a directory");
      }
      if (safetensors == null && compressedTensors == null && gguf.isEmpty()) {
        throw new IllegalArgumentException("nothing to export: ask for at least one format");
      }
    }

    boolean quantizesLayers() {
      return safetensors != null || compressedTensors != null;
    }
  }

  /**
   * A run.
   *
   * @param model the source Hugging Face directory
   * @param quantization method, bits, group size, grid
   * @param calibration the text for GPTQ/AWQ and the importance matrix, or null
   * @param imatrix weight the GGUF block quantizers by an importance matrix of {@code calibration}
   * @param outputs what to write
   */
  public record Request(
      Path model,
      WeightQuantization quantization,
      Calibration calibration,
      boolean imatrix,
      Outputs outputs) {
    public Request {
      if (outputs.compressedTensors() != null
          && (quantization.method() == Method.FP8 || quantization.method() == Method.NF4)) {
        throw new UnsupportedOperationException(
            "not supported yet: "
                + quantization.method().id()
                + " in compressed-tensors (integer grids are: rtn, gptq, awq)");
      }
      if (needsSamples(quantization, imatrix, outputs) && calibration == null) {
        throw new IllegalArgumentException(
            (imatrix ? "an importance matrix" : quantization.method().id())
                + " needs calibration text, found none");
      }
    }

    private static boolean needsSamples(WeightQuantization q, boolean imatrix, Outputs o) {
      return (q.method().calibrated() && o.quantizesLayers()) || (imatrix && !o.gguf().isEmpty());
    }

    boolean needsSamples() {
      return needsSamples(quantization, imatrix, outputs);
    }
  }

  /** One GGUF file written. */
  public record GgufFile(LlamaFileType type, Path path, long bytes) {}

  /**
   * What was written.
   *
   * @param layers what the layer-wise quantizer did, or null when only GGUF was asked for
   * @param sourceBytes bytes of all tensors of the input
   * @param quantizedModelBytes the model as stored quantized (quantized linears as codes, scales,
   *     zero points; other tensors as in the input), or -1 without {@code layers}
   * @param gguf GGUF files written
   * @param provenance the object stored under {@value #PROVENANCE_KEY}
   * @param timings seconds per phase, in order
   */
  public record Result(
      LayerwiseQuantizer.Summary layers,
      long sourceBytes,
      long quantizedModelBytes,
      List<GgufFile> gguf,
      ObjectNode provenance,
      Map<String, Double> timings) {}

  /**
   * Runs {@code request}; {@code origin} (tool, command line or job, recipe) is copied into the
   * provenance first. When it already holds {@code input.sha256} (file name to hash, e.g. from a
   * verified artifact manifest) the input is not hashed again. Output directories must be absent or
   * empty.
   *
   * @throws IOException on unreadable input or unwritable output
   * @throws IllegalArgumentException when the model does not fit the settings (e.g. group size)
   */
  public static Result run(Request request, ObjectNode origin, Progress progress)
      throws IOException {
    Path model = request.model();
    WeightQuantization q = request.quantization();
    Outputs outputs = request.outputs();
    if (outputs.compressedTensors() != null) {
      Codebook.refuseExport(model, "compressed-tensors");
    }
    if (!outputs.gguf().isEmpty()) {
      Codebook.refuseExport(model, "GGUF");
    }
    for (Path dir : new Path[] {outputs.safetensors(), outputs.compressedTensors()}) {
      requireEmpty(dir);
    }
    long t0 = System.nanoTime();
    Map<String, Double> timings = new LinkedHashMap<>();
    ModelConfig config = ModelConfig.read(model);
    config.requireDenseLinears();
    ModelDirectory input = ModelDirectory.open(model);
    int steps =
        (outputs.quantizesLayers() ? config.numLayers() : 0)
            + (request.imatrix() && !outputs.gguf().isEmpty() ? 1 : 0)
            + outputs.gguf().size();
    Steps done = new Steps(progress, steps);

    List<int[]> samples = List.of();
    int seqLen = 0;
    if (request.needsSamples()) {
      long c0 = System.nanoTime();
      Calibration cal = request.calibration();
      seqLen = Math.min(cal.seqLen(), config.maxPositions());
      try (TextTokenizer tok = Tokenizers.forModel(model)) {
        samples = cal.text().corpus().calibrationSamples(tok, cal.samples(), seqLen, cal.seed());
      }
      timings.put("calibration_text_s", seconds(c0));
      progress.report(0, samples.size() + " calibration windows of " + seqLen + " tokens");
    }
    ObjectNode provenance = provenance(request, origin, input, seqLen);

    LayerwiseQuantizer.Summary summary = null;
    long quantizedModelBytes = -1;
    if (outputs.quantizesLayers()) {
      long l0 = System.nanoTime();
      summary = quantizeLayers(request, config, input, samples, provenance, done, l0);
      timings.put("quantize_s", seconds(l0));
      quantizedModelBytes =
          input.totalWeightBytes() - linearSourceBytes(input) + summary.quantizedLinearBytes();
    }
    List<GgufFile> gguf = new ArrayList<>();
    if (!outputs.gguf().isEmpty()) {
      Files.createDirectories(outputs.ggufDir());
      Map<String, float[]> importance = Map.of();
      if (request.imatrix()) {
        long i0 = System.nanoTime();
        importance = GgufExport.imatrix(model, samples);
        timings.put("imatrix_s", seconds(i0));
        done.step("importance matrix collected from " + samples.size() + " windows");
      }
      for (LlamaFileType type : outputs.gguf()) {
        long g0 = System.nanoTime();
        String n = type.label();
        Path file = outputs.ggufDir().resolve("model-" + n + ".gguf");
        LlamaGgufExporter.Result g = GgufExport.export(model, type, importance, file);
        timings.put("gguf_" + n + "_s", seconds(g0));
        gguf.add(new GgufFile(type, file, g.bytes()));
        done.step("wrote GGUF " + n + " (" + g.bytes() + " bytes)");
      }
    }
    timings.put("total_s", seconds(t0));
    return new Result(
        summary, input.totalWeightBytes(), quantizedModelBytes, gguf, provenance, timings);
  }

  private static LayerwiseQuantizer.Summary quantizeLayers(
      Request request,
      ModelConfig config,
      ModelDirectory input,
      List<int[]> samples,
      ObjectNode provenance,
      Steps done,
      long start)
      throws IOException {
    WeightQuantization q = request.quantization();
    Path model = request.model();
    Outputs o = request.outputs();
    DType floatType = input.dominantDType();
    if (floatType != DType.F16 && floatType != DType.BF16) {
      floatType = DType.F32;
    }
    Map<String, String> meta =
        Map.of("compactor.quantize", q.label(), "compactor.provenance", "config.json");
    try (TensorSource source = Checkpoints.open(model);
        DequantizedCheckpointSink hf =
            o.safetensors() != null
                ? new DequantizedCheckpointSink(model, o.safetensors(), meta)
                : null;
        CompressedTensorsWriter ct =
            o.compressedTensors() != null
                ? new CompressedTensorsWriter(o.compressedTensors(), scheme(q), floatType, meta)
                : null) {
      QuantizedCheckpointWriter ctSink =
          ct == null ? null : new QuantizedCheckpointWriter(config, ct);
      QuantizedLayerSink tee =
          (layer, weights, quantized) -> {
            if (hf != null) {
              hf.accept(layer, weights, quantized);
            }
            if (ctSink != null) {
              ctSink.accept(layer, weights, quantized);
            }
          };
      LayerwiseQuantizer.Summary s =
          LayerwiseQuantizer.run(
              model,
              q,
              samples,
              tee,
              (phase, layer, total) ->
                  done.step(
                      String.format(
                          Locale.ROOT,
                          "%s layer %d/%d done (%.1f s)",
                          q.method().id(),
                          layer,
                          total,
                          seconds(start))));
      ObjectNode extra = JSON.createObjectNode();
      extra.set(PROVENANCE_KEY, provenance);
      if (hf != null) {
        hf.finish(DequantizedCheckpointSink.quantizationConfig(q, s), extra);
      }
      if (ctSink != null) {
        Path ctDir = o.compressedTensors();
        ctSink.finish(source, model, ctDir);
        ObjectNode c = (ObjectNode) JSON.readTree(ctDir.resolve("config.json").toFile());
        c.setAll(extra);
        ModelDirectory.writeConfig(ctDir, c);
      }
      return s;
    }
  }

  /** The compressed-tensors scheme of each integer method. */
  public static CompressedTensorsScheme scheme(WeightQuantization q) {
    return switch (q.method()) {
      case GPTQ -> GptqModelQuantizer.scheme(LayerwiseQuantizer.gptqConfig(q));
      case AWQ -> AwqModelQuantizer.scheme(LayerwiseQuantizer.awqConfig(q));
      case RTN ->
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.PACK_QUANTIZED,
              q.bits(),
              q.symmetric(),
              q.groupSize(),
              null);
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: " + q.method().id() + " in compressed-tensors");
    };
  }

  private static ObjectNode provenance(
      Request r, ObjectNode origin, ModelDirectory input, int seqLen) throws IOException {
    WeightQuantization q = r.quantization();
    ObjectNode p = origin == null ? JSON.createObjectNode() : origin.deepCopy();
    p.put("method", q.method().id());
    p.put("bits", q.bits());
    p.put("group_size", q.groupSize() == 0 ? -1 : q.groupSize());
    p.put("symmetric", q.symmetric());
    if (q.method() == Method.GPTQ) {
      p.put("gptq", LayerwiseQuantizer.gptqConfig(q).toString());
    } else if (q.method() == Method.AWQ) {
      p.put("awq", LayerwiseQuantizer.awqConfig(q).toString());
    }
    Outputs o = r.outputs();
    ArrayNode exports = p.putArray("exports");
    if (o.safetensors() != null) {
      exports.add("safetensors");
    }
    if (o.compressedTensors() != null) {
      exports.add("compressed-tensors");
    }
    for (LlamaFileType t : o.gguf()) {
      exports.add("gguf:" + t.label());
    }
    if (!o.gguf().isEmpty()) {
      p.put(
          "gguf_note",
          "GGUF tensors are quantized from the source weights by ggml's block quantizers"
              + (r.imatrix() ? " weighted by an importance matrix of the calibration text" : "")
              + "; the method applies to the safetensors and compressed-tensors exports");
    }
    if (r.needsSamples()) {
      Calibration c = r.calibration();
      p.putObject("calibration")
          .put("source", c.text().source())
          .put("sha256", c.text().sha256())
          .put("samples", c.samples())
          .put("seq_len", seqLen)
          .put("seed", c.seed());
    } else {
      p.putNull("calibration");
    }
    if (!p.path("input").has("sha256")) {
      ObjectNode in = p.has("input") ? (ObjectNode) p.get("input") : p.putObject("input");
      ObjectNode hashes = in.putObject("sha256");
      for (Map.Entry<String, String> e : input.sha256Files().entrySet()) {
        hashes.put(e.getKey(), e.getValue());
      }
    }
    return p;
  }

  private static long linearSourceBytes(ModelDirectory input) throws IOException {
    long bytes = 0;
    try (TensorSource src = input.weights()) {
      for (String n : src.names()) {
        if (LayerwiseQuantizer.isDecoderLinear(n)) {
          bytes += src.info(n).byteLength();
        }
      }
    }
    return bytes;
  }

  private static void requireEmpty(Path dir) throws IOException {
    if (dir != null && Files.exists(dir)) {
      try (var entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("output directory " + dir + " must be empty or absent");
        }
      }
    }
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }

  /** Counts finished units of work into a fraction. */
  private static final class Steps {
    private final Progress progress;
    private final int total;
    private int done;

    Steps(Progress progress, int total) {
      this.progress = progress;
      this.total = Math.max(1, total);
    }

    void step(String message) {
      done++;
      progress.report(Math.min(1.0, (double) done / total), message);
    }
  }
}
