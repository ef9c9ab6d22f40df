package dev.compactor.cli.quant;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Command;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.quant.table.WeightQuantization;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.stream.Stream;

/**
 * {@code compactor quantize}: quantizes a Hugging Face model with RTN, GPTQ, AWQ, FP8 or NF4 and
 * writes the exports asked for under {@code --out}: {@code safetensors/} (dequantized weights, any
 * tool loads it), {@code compressed-tensors/} (packed integer weights vLLM serves), and {@code
 * model-<type>.gguf} files (llama.cpp; quantized from the source weights by ggml's block
 * quantizers, with an importance matrix when {@code --calibration} is given), all by {@link
 * QuantizationPipeline}. Progress per layer goes to stderr; {@code compactor.json} (also embedded
 * in every config.json written) records the command line, the settings, the calibration text's
 * source and hash and the input files' hashes. {@code --method codebook} runs {@link
 * CodebookQuantizeCommand} instead (its own options; a {@code compactor-codebook} checkpoint).
 */
public final class QuantizeCommand implements Command {

  static final String PROVENANCE_FILE = "compactor.json";

  /** Calibration windows taken per run. */
  static final int SAMPLES = 128;

  /** Tokens per calibration window (fewer when the model's context is shorter). */
  static final int MAX_SEQ_LEN = 512;

  /** Seed of the window offsets, so a run is reproducible. */
  static final long SEED = 0;

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  @Override
  public String name() {
    return "quantize";
  }

  @Override
  public String summary() {
    return "quantize a model (rtn|gptq|awq|fp8|nf4|codebook) to safetensors, compressed-tensors,"
        + " GGUF";
  }

  @Override
  public String usage() {
    return "--model DIR --method rtn|gptq|awq|fp8|nf4 --bits 4|8 [--group-size -1|32|64|128]"
        + " [--asymmetric|--symmetric] [--calibration FILE]"
        + " [--export safetensors,compressed-tensors,gguf:q8_0,gguf:q6_k,gguf:q4_k_m,gguf:q4_k_s,gguf:q4_0]"
        + " --out DIR [--json]\n  or: "
        + CodebookQuantizeCommand.usage();
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    if (CodebookQuantizeCommand.wanted(argv)) {
      return CodebookQuantizeCommand.run(argv, out, err);
    }
    QuantizeRequest r = QuantizeRequest.parse(argv);
    WeightQuantization q = r.quantization();
    boolean calibrates =
        (q.method().calibrated() && r.quantizesLayers())
            || (r.calibration() != null && !r.gguf().isEmpty());
    QuantizationPipeline.Calibration calibration = null;
    if (calibrates) {
      if (r.calibration() == null) {
        err.println(
            "note: no --calibration given; "
                + q.method().id()
                + " calibrates on the bundled English Europarl training text ("
                + Corpus.BUILTIN_EUROPARL
                + ")");
      }
      calibration =
          new QuantizationPipeline.Calibration(
              CalibrationText.file(r.calibration()), SAMPLES, MAX_SEQ_LEN, SEED);
    }
    Files.createDirectories(r.out());
    QuantizationPipeline.Outputs outputs =
        new QuantizationPipeline.Outputs(
            r.safetensors() ? r.out().resolve("safetensors") : null,
            r.compressedTensors() ? r.out().resolve("compressed-tensors") : null,
            r.gguf(),
            r.out());
    ObjectNode origin = JSON.createObjectNode();
    origin.put("tool", "compactor quantize");
    ArrayNode cmd = origin.putArray("command_line");
    cmd.add("quantize");
    for (String a : argv) {
      cmd.add(a);
    }
    origin.put("created", Instant.now().toString());
    origin.put("input_dir", r.model().toAbsolutePath().toString());
    QuantizationPipeline.Result result =
        QuantizationPipeline.run(
            new QuantizationPipeline.Request(
                r.model(), q, calibration, r.calibration() != null, outputs),
            origin,
            (fraction, message) -> err.println(message));
    Files.writeString(
        r.out().resolve(PROVENANCE_FILE), JSON.writeValueAsString(result.provenance()));

    ObjectNode summary = JSON.createObjectNode();
    summary.put("out", r.out().toAbsolutePath().toString());
    summary.put("method", q.method().id());
    summary.put("bits", q.bits());
    summary.put("group_size", q.groupSize() == 0 ? -1 : q.groupSize());
    summary.put("symmetric", q.symmetric());
    summary.put("source_bytes", result.sourceBytes());
    if (result.layers() != null) {
      summary.put("quantized_parameters", result.layers().quantizedParameters());
      summary.put("quantized_linear_bytes", result.layers().quantizedLinearBytes());
      summary.put("quantized_model_bytes", result.quantizedModelBytes());
      summary.put("bits_per_weight", result.layers().bitsPerWeight());
    }
    for (QuantizationPipeline.GgufFile g : result.gguf()) {
      summary.put("gguf_" + g.type().label() + "_bytes", g.bytes());
    }
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
    ObjectNode timings = summary.putObject("timings");
    result.timings().forEach(timings::put);
    if (r.json()) {
      out.println(new ObjectMapper().writeValueAsString(summary));
    } else {
      out.printf("wrote %s (%s)%n", r.out(), q.label());
      for (var f : files) {
        out.printf("  %-40s %,14d bytes%n", f.get("path").asText(), f.get("bytes").asLong());
      }
      if (result.layers() != null) {
        out.printf(
            "quantized size %,d bytes (source %,d), %.3f bits per quantized weight%n",
            result.quantizedModelBytes(), result.sourceBytes(), result.layers().bitsPerWeight());
      }
    }
    return 0;
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
