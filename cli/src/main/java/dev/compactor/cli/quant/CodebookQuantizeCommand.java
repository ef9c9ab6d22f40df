package dev.compactor.cli.quant;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.codebook.CodebookModelQuantizer;
import dev.compactor.core.quant.codebook.CodebookSettings;
import dev.compactor.core.quant.codebook.CodebookTable;
import dev.compactor.core.quant.codebook.Sensitivity;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code compactor quantize --method codebook}: SqueezeLLM-style non-uniform quantization, one
 * codebook of {@code 2^bits} F16 centroids per output row of every decoder linear, fitted by
 * sensitivity-weighted k-means ({@code --sensitivity fisher} by default, {@code hessian} or {@code
 * uniform}), written to {@code --out}/codebook as a {@code compactor-codebook} checkpoint (packed
 * indices + codebooks; only Compactor loads it, dequantized). {@code compactor.json} records the
 * command line, settings, calibration text and input hashes. Exports to GGUF or compressed-tensors
 * are refused: neither format has per-row codebooks.
 */
final class CodebookQuantizeCommand {

  static final Set<String> OPTIONS =
      Set.of(
          "model",
          "method",
          "bits",
          "sensitivity",
          "kmeans",
          "max-iterations",
          "calibration",
          "samples",
          "seq-len",
          "export",
          "out");
  static final Set<String> FLAGS = Set.of("json");

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private CodebookQuantizeCommand() {}

  static String usage() {
    return "--model DIR --method codebook --bits 2|3|4 [--sensitivity fisher|hessian|uniform]"
        + " [--kmeans exact|lloyd] [--max-iterations N] [--calibration FILE] [--samples N]"
        + " [--seq-len N] --out DIR [--json]";
  }

  /** Whether {@code argv} asks for {@code --method codebook}. */
  static boolean wanted(String[] argv) {
    for (int i = 0; i + 1 < argv.length; i++) {
      if (argv[i].equals("--method") && argv[i + 1].trim().equalsIgnoreCase("codebook")) {
        return true;
      }
      if (argv[i].equalsIgnoreCase("--method=codebook")) {
        return true;
      }
    }
    return false;
  }

  static int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, OPTIONS, FLAGS);
    Path model = args.requiredPath("model");
    if (!args.present("bits")) {
      throw new UsageException("missing required option --bits (2, 3 or 4)");
    }
    int bits = args.integer("bits", 0);
    if (bits < 2 || bits > 4) {
      throw new UsageException("--bits must be 2, 3 or 4 for codebook, found " + bits);
    }
    Sensitivity sensitivity;
    try {
      sensitivity = Sensitivity.parse(args.string("sensitivity", "fisher"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--sensitivity: " + e.getMessage());
    }
    String kmeans = args.string("kmeans", "exact").trim().toLowerCase(Locale.ROOT);
    if (!kmeans.equals("exact") && !kmeans.equals("lloyd")) {
      throw new UsageException("--kmeans: expected exact or lloyd, found " + kmeans);
    }
    int maxIterations = args.integer("max-iterations", CodebookSettings.DEFAULT_MAX_ITERATIONS);
    if (maxIterations < 1) {
      throw new UsageException("--max-iterations must be >= 1, found " + maxIterations);
    }
    for (String e : args.string("export", "safetensors").split(",")) {
      if (!e.trim().equalsIgnoreCase("safetensors")) {
        throw new UsageException(
            "not supported: codebook quantization exported as "
                + e.trim()
                + " (GGUF and compressed-tensors have no per-row codebook format; the codebook"
                + " checkpoint is written as safetensors and read by Compactor only)");
      }
    }
    int samplesWanted = args.integer("samples", QuantizeCommand.SAMPLES);
    if (samplesWanted < 1) {
      throw new UsageException("--samples must be >= 1, found " + samplesWanted);
    }
    Path calibrationFile =
        args.present("calibration") ? Path.of(args.required("calibration")) : null;
    if (calibrationFile != null && !Files.isRegularFile(calibrationFile)) {
      throw new UsageException(
          "--calibration: expected a text file, found none at " + calibrationFile);
    }
    Path outRoot = args.requiredPath("out");
    if (Files.exists(outRoot)) {
      try (var entries = Files.list(outRoot)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + outRoot + " must be absent or empty");
        }
      }
    }
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    ModelConfig config = ModelConfig.read(model);
    int seqLen =
        Math.min(args.integer("seq-len", QuantizeCommand.MAX_SEQ_LEN), config.maxPositions());
    CodebookSettings settings =
        new CodebookSettings(bits, sensitivity, maxIterations, kmeans.equals("exact"));

    ObjectNode provenance = JSON.createObjectNode();
    provenance.put("tool", "compactor quantize");
    ArrayNode cmd = provenance.putArray("command_line");
    cmd.add("quantize");
    for (String a : argv) {
      cmd.add(a);
    }
    provenance.put("created", Instant.now().toString());
    provenance.put("input_dir", model.toAbsolutePath().toString());
    provenance.put("method", "codebook");
    provenance.put("bits", bits);
    provenance.put("sensitivity", sensitivity.id());
    provenance.put("kmeans", kmeans);

    List<int[]> samples = List.of();
    long t0 = System.nanoTime();
    if (sensitivity.calibrated()) {
      if (calibrationFile == null) {
        err.println(
            "note: no --calibration given; the "
                + sensitivity.id()
                + " sensitivity uses the bundled English Europarl training text ("
                + Corpus.BUILTIN_EUROPARL
                + ")");
      }
      CalibrationText text = CalibrationText.file(calibrationFile);
      try (TextTokenizer tok = Tokenizers.forModel(model)) {
        samples =
            text.corpus().calibrationSamples(tok, samplesWanted, seqLen, QuantizeCommand.SEED);
      }
      err.println(samples.size() + " calibration windows of " + seqLen + " tokens");
      provenance
          .putObject("calibration")
          .put("source", text.source())
          .put("sha256", text.sha256())
          .put("samples", samples.size())
          .put("seq_len", seqLen)
          .put("seed", QuantizeCommand.SEED);
    } else {
      provenance.putNull("calibration");
    }
    ObjectNode hashes = provenance.putObject("input").putObject("sha256");
    for (Map.Entry<String, String> e : ModelDirectory.open(model).sha256Files().entrySet()) {
      hashes.put(e.getKey(), e.getValue());
    }
    Path dir = outRoot.resolve("codebook");
    CodebookModelQuantizer.Summary s =
        CodebookModelQuantizer.run(
            model,
            settings,
            samples,
            dir,
            Map.of("compactor", "codebook " + bits + "-bit " + sensitivity.id()),
            (phase, done, total) -> err.printf("%s: %d/%d%n", phase, done, total));
    double seconds = (System.nanoTime() - t0) / 1e9;
    long sourceBytes = ModelDirectory.open(model).totalWeightBytes();
    long written = CodebookTable.weightFileBytes(dir);
    ObjectNode result = provenance.putObject("result");
    result.put("quantized_linears", s.quantizedLinears());
    result.put("quantized_parameters", s.quantizedParameters());
    result.put("quantized_linear_bytes", s.quantizedLinearBytes());
    result.put("source_linear_bytes", s.sourceLinearBytes());
    result.put("bits_per_weight", s.bitsPerWeight());
    result.put("rows", s.rows());
    result.put("converged_rows", s.convergedRows());
    result.put("source_bytes", sourceBytes);
    result.put("weight_file_bytes", written);
    result.put("seconds", seconds);
    Files.writeString(
        outRoot.resolve(QuantizeCommand.PROVENANCE_FILE), JSON.writeValueAsString(provenance));
    Files.writeString(
        dir.resolve(QuantizeCommand.PROVENANCE_FILE), JSON.writeValueAsString(provenance));

    ObjectNode summary = JSON.createObjectNode();
    summary.put("out", outRoot.toAbsolutePath().toString());
    summary.put("method", "codebook");
    summary.put("bits", bits);
    summary.put("sensitivity", sensitivity.id());
    summary.put("kmeans", kmeans);
    summary.setAll(result);
    ArrayNode files = summary.putArray("files");
    try (Stream<Path> walk = Files.walk(outRoot)) {
      for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
        if (Files.isRegularFile(p)) {
          files
              .addObject()
              .put("path", outRoot.relativize(p).toString())
              .put("bytes", Files.size(p));
        }
      }
    }
    if (args.has("json")) {
      out.println(new ObjectMapper().writeValueAsString(summary));
    } else {
      out.printf("wrote %s (%s)%n", dir, settings.label());
      for (var f : files) {
        out.printf("  %-40s %,14d bytes%n", f.get("path").asText(), f.get("bytes").asLong());
      }
      out.printf(
          Locale.ROOT,
          "weights %,d bytes (source %,d), %.3f bits per quantized weight incl. codebooks;"
              + " loads in Compactor only (eval, generate, later stages), not vLLM or llama.cpp%n",
          written,
          sourceBytes,
          s.bitsPerWeight());
    }
    return 0;
  }
}
