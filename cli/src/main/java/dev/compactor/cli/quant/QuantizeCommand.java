package dev.compactor.cli.quant;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Command;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
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
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code compactor quantize}: quantizes a Hugging Face model with RTN, GPTQ, AWQ, FP8 or NF4 and
 * writes the exports asked for under {@code --out}: {@code safetensors/} (dequantized weights, any
 * tool loads it), {@code compressed-tensors/} (packed integer weights vLLM serves), and {@code
 * model-<type>.gguf} files (llama.cpp; quantized from the source weights by ggml's block
 * quantizers, with an importance matrix when {@code --calibration} is given). Progress per layer
 * goes to stderr; {@code compactor.json} (also embedded in every config.json written) records the
 * command line, the settings, the calibration text's source and hash and the input files' hashes.
 */
public final class QuantizeCommand implements Command {

  static final String PROVENANCE_FILE = "compactor.json";
  static final String PROVENANCE_KEY = "compactor_provenance";
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  @Override
  public String name() {
    return "quantize";
  }

  @Override
  public String summary() {
    return "quantize a model (rtn|gptq|awq|fp8|nf4) to safetensors, compressed-tensors, GGUF";
  }

  @Override
  public String usage() {
    return "--model DIR --method rtn|gptq|awq|fp8|nf4 --bits 4|8 [--group-size -1|32|64|128]"
        + " [--calibration FILE]"
        + " [--export safetensors,compressed-tensors,gguf:q8_0,gguf:q6_k,gguf:q4_k,gguf:q4_0]"
        + " --out DIR [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    QuantizeRequest r = QuantizeRequest.parse(argv);
    long t0 = System.nanoTime();
    WeightQuantization q = r.quantization();
    Method method = q.method();
    ModelConfig config = ModelConfig.read(r.model());
    ModelDirectory input = ModelDirectory.open(r.model());
    ObjectNode timings = JSON.createObjectNode();

    boolean needsSamples =
        (method.calibrated() && r.quantizesLayers())
            || (r.calibration() != null && !r.gguf().isEmpty());
    CalibrationText calib = null;
    List<int[]> samples = List.of();
    int seqLen = Math.min(512, config.maxPositions());
    if (needsSamples) {
      if (r.calibration() == null) {
        err.println(
            "note: no --calibration given; "
                + method.id()
                + " calibrates on the bundled English Europarl training text ("
                + CalibrationText.BUILTIN
                + ")");
      }
      long c0 = System.nanoTime();
      calib = CalibrationText.load(r.calibration());
      try (TextTokenizer tok = Tokenizers.forModel(r.model())) {
        samples = calib.samples(tok, seqLen);
      }
      timings.put("calibration_text_s", seconds(c0));
    }
    ObjectNode provenance = provenance(argv, r, input, calib, seqLen);
    Files.createDirectories(r.out());

    ObjectNode summary = JSON.createObjectNode();
    summary.put("out", r.out().toAbsolutePath().toString());
    summary.put("method", method.id());
    summary.put("bits", q.bits());
    summary.put("group_size", q.groupSize() == 0 ? -1 : q.groupSize());
    summary.put("source_bytes", input.totalWeightBytes());
    if (r.quantizesLayers()) {
      long l0 = System.nanoTime();
      LayerwiseQuantizer.Summary s = quantizeLayers(r, config, samples, provenance, err);
      timings.put("quantize_s", seconds(l0));
      long linearSourceBytes = linearSourceBytes(r.model());
      summary.put("quantized_parameters", s.quantizedParameters());
      summary.put("quantized_linear_bytes", s.quantizedLinearBytes());
      summary.put(
          "quantized_model_bytes",
          input.totalWeightBytes() - linearSourceBytes + s.quantizedLinearBytes());
      summary.put("bits_per_weight", s.bitsPerWeight());
    }
    if (!r.gguf().isEmpty()) {
      Map<String, float[]> importance = Map.of();
      if (r.calibration() != null) {
        long i0 = System.nanoTime();
        err.println("collecting the importance matrix from the calibration text");
        importance = GgufExport.imatrix(r.model(), samples);
        timings.put("imatrix_s", seconds(i0));
      }
      for (GgmlType type : r.gguf()) {
        long g0 = System.nanoTime();
        String n = type.name().toLowerCase(Locale.ROOT);
        err.println("writing GGUF " + n);
        LlamaGgufExporter.Result g =
            GgufExport.export(r.model(), type, importance, r.out().resolve("model-" + n + ".gguf"));
        timings.put("gguf_" + n + "_s", seconds(g0));
        summary.put("gguf_" + n + "_bytes", g.bytes());
      }
    }
    Files.writeString(r.out().resolve(PROVENANCE_FILE), JSON.writeValueAsString(provenance));
    ArrayNode files = summary.putArray("files");
    try (Stream<Path> walk = Files.walk(r.out())) {
      for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
        if (Files.isRegularFile(p)) {
          files
              .addObject()
              .put("path", r.out().relativize(p).toString())
              .put("bytes", Files.size(p));
        }
      }
    }
    timings.put("total_s", seconds(t0));
    summary.set("timings", timings);
    if (r.json()) {
      out.println(new ObjectMapper().writeValueAsString(summary));
    } else {
      out.printf("wrote %s (%s)%n", r.out(), q.label());
      for (var f : files) {
        out.printf("  %-40s %,14d bytes%n", f.get("path").asText(), f.get("bytes").asLong());
      }
      if (summary.has("quantized_model_bytes")) {
        out.printf(
            "quantized size %,d bytes (source %,d), %.3f bits per quantized weight%n",
            summary.get("quantized_model_bytes").asLong(),
            input.totalWeightBytes(),
            summary.get("bits_per_weight").asDouble());
      }
    }
    return 0;
  }

  private static LayerwiseQuantizer.Summary quantizeLayers(
      QuantizeRequest r,
      ModelConfig config,
      List<int[]> samples,
      ObjectNode provenance,
      PrintStream err)
      throws IOException {
    WeightQuantization q = r.quantization();
    DType floatType = ModelDirectory.open(r.model()).dominantDType();
    if (floatType != DType.F16 && floatType != DType.BF16) {
      floatType = DType.F32;
    }
    Map<String, String> meta =
        Map.of("compactor.quantize", q.label(), "compactor.provenance", PROVENANCE_FILE);
    Path hfDir = r.out().resolve("safetensors");
    Path ctDir = r.out().resolve("compressed-tensors");
    long start = System.nanoTime();
    try (TensorSource source = Checkpoints.open(r.model());
        DequantizedCheckpointSink hf =
            r.safetensors() ? new DequantizedCheckpointSink(r.model(), hfDir, meta) : null;
        CompressedTensorsWriter ct =
            r.compressedTensors()
                ? new CompressedTensorsWriter(ctDir, scheme(q), floatType, meta)
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
              r.model(),
              q,
              samples,
              tee,
              (phase, done, total) ->
                  err.printf(
                      Locale.ROOT,
                      "%s layer %d/%d done (%.1f s)%n",
                      q.method().id(),
                      done,
                      total,
                      seconds(start)));
      if (hf != null) {
        ObjectNode extra = JSON.createObjectNode();
        extra.set(PROVENANCE_KEY, provenance);
        hf.finish(DequantizedCheckpointSink.quantizationConfig(q, s), extra);
      }
      if (ctSink != null) {
        ctSink.finish(source, r.model(), ctDir);
        ObjectNode c = (ObjectNode) JSON.readTree(ctDir.resolve("config.json").toFile());
        c.set(PROVENANCE_KEY, provenance);
        Files.writeString(ctDir.resolve("config.json"), JSON.writeValueAsString(c));
      }
      return s;
    }
  }

  /** The compressed-tensors scheme of each integer method, as h/gptq's model quantizers use. */
  static CompressedTensorsScheme scheme(WeightQuantization q) {
    return switch (q.method()) {
      case GPTQ -> GptqModelQuantizer.scheme(LayerwiseQuantizer.gptqConfig(q));
      case AWQ -> AwqModelQuantizer.scheme(LayerwiseQuantizer.awqConfig(q));
      case RTN ->
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.PACK_QUANTIZED, q.bits(), false, q.groupSize(), null);
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: " + q.method().id() + " in compressed-tensors");
    };
  }

  private static ObjectNode provenance(
      String[] argv, QuantizeRequest r, ModelDirectory input, CalibrationText calib, int seqLen)
      throws IOException {
    WeightQuantization q = r.quantization();
    ObjectNode p = JSON.createObjectNode();
    p.put("tool", "compactor quantize");
    ArrayNode cmd = p.putArray("command_line");
    cmd.add("quantize");
    for (String a : argv) {
      cmd.add(a);
    }
    p.put("created", Instant.now().toString());
    p.put("method", q.method().id());
    p.put("bits", q.bits());
    p.put("group_size", q.groupSize() == 0 ? -1 : q.groupSize());
    p.put("symmetric", q.method() == Method.FP8 || q.method() == Method.NF4);
    if (q.method() == Method.GPTQ) {
      p.put("gptq", LayerwiseQuantizer.gptqConfig(q).toString());
    } else if (q.method() == Method.AWQ) {
      p.put("awq", LayerwiseQuantizer.awqConfig(q).toString());
    }
    ArrayNode exports = p.putArray("exports");
    if (r.safetensors()) {
      exports.add("safetensors");
    }
    if (r.compressedTensors()) {
      exports.add("compressed-tensors");
    }
    for (GgmlType t : r.gguf()) {
      exports.add("gguf:" + t.name().toLowerCase(Locale.ROOT));
    }
    if (!r.gguf().isEmpty()) {
      p.put(
          "gguf_note",
          "GGUF tensors are quantized from the source weights by ggml's block quantizers"
              + (calib != null ? " weighted by an importance matrix of the calibration text" : "")
              + "; --method applies to the safetensors and compressed-tensors exports");
    }
    if (calib != null) {
      p.putObject("calibration")
          .put("source", calib.source())
          .put("sha256", calib.sha256())
          .put("samples", CalibrationText.SAMPLES)
          .put("seq_len", seqLen)
          .put("seed", CalibrationText.SEED);
    } else {
      p.putNull("calibration");
    }
    ObjectNode in = p.putObject("input");
    in.put("dir", r.model().toAbsolutePath().toString());
    ObjectNode hashes = in.putObject("sha256");
    for (Map.Entry<String, String> e : input.sha256Files().entrySet()) {
      hashes.put(e.getKey(), e.getValue());
    }
    return p;
  }

  private static long linearSourceBytes(Path model) throws IOException {
    long bytes = 0;
    try (TensorSource src = Checkpoints.open(model)) {
      for (String n : src.names()) {
        if (n.startsWith("model.layers.") && n.endsWith("_proj.weight")) {
          bytes += src.info(n).byteLength();
        }
      }
    }
    return bytes;
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
