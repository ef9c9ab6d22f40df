package dev.compactor.cli.factorize;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.HeldOutQuality;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.factorize.Factorization;
import dev.compactor.core.factorize.FactorizationReport;
import dev.compactor.core.factorize.FactorizeSpec;
import dev.compactor.core.factorize.RankRule;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor factorize}: replaces a model's decoder linears by low-rank pairs from a
 * truncated SVD ({@code --method svd}) or SVD-LLM's activation-aware SVD ({@code svd_llm}, the
 * default: calibrated layer by layer on {@code --calibration} text, by default the bundled Europarl
 * training split), at a rank per matrix from {@code --ratio} (parameter budget) or {@code --energy}
 * (spectrum share). Writes the factorized model ({@code X.u.weight}/{@code X.v.weight} and {@code
 * compactor_low_rank} in config.json, which this project's forward runs) or with {@code --merge}
 * the products as dense {@code X.weight}, plus {@code compactor.json} provenance; then scores the
 * output against the input on held-out text (perplexity, KL divergence). Progress per layer on
 * stderr, the report on stdout (JSON with {@code --json}).
 */
public final class FactorizeCommand implements Command {

  /** Seed of the calibration window offsets, as the prune command's. */
  static final long SEED = 1234;

  static final int DEFAULT_SAMPLES = 64;
  static final int DEFAULT_SEQ_LEN = 256;
  static final int DEFAULT_EVAL_BYTES = 50_000;
  static final String PROVENANCE_FILE = "compactor.json";

  @Override
  public String name() {
    return "factorize";
  }

  @Override
  public String summary() {
    return "low-rank factorize the decoder linears (truncated SVD or activation-aware SVD-LLM)";
  }

  @Override
  public String usage() {
    return "--model DIR (--ratio F | --energy F) [--method svd|svd_llm (default svd_llm)]"
        + " [--linears q_proj,k_proj,...] [--calibration FILE] [--samples N] [--seq-len N]"
        + " [--merge] [--text FILE] [--max-bytes N] [--no-eval] --out DIR [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model",
                "ratio",
                "energy",
                "method",
                "linears",
                "calibration",
                "samples",
                "seq-len",
                "text",
                "max-bytes",
                "out"),
            Set.of("merge", "json", "no-eval"));
    Path model = args.requiredPath("model");
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    if (args.present("ratio") == args.present("energy")) {
      throw new UsageException("give exactly one of --ratio F and --energy F");
    }
    RankRule rule;
    try {
      rule =
          args.present("ratio")
              ? RankRule.ratio(args.number("ratio", 0))
              : RankRule.energy(args.number("energy", 0));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--" + e.getMessage());
    }
    FactorizeSpec.Method method;
    try {
      method = FactorizeSpec.Method.parse(args.string("method", "svd_llm"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--" + e.getMessage());
    }
    List<String> linears =
        args.present("linears")
            ? Arrays.stream(args.required("linears").split(",")).map(String::trim).toList()
            : List.of();
    if (linears.stream().anyMatch(String::isEmpty)) {
      throw new UsageException("--linears: expected comma-separated names, found an empty one");
    }
    Path calibrationFile =
        args.present("calibration") ? Path.of(args.required("calibration")) : null;
    if (calibrationFile != null && !Files.isRegularFile(calibrationFile)) {
      throw new UsageException(
          "--calibration: expected a text file, found none at " + calibrationFile);
    }
    if (calibrationFile != null && !method.calibrated()) {
      throw new UsageException("--calibration: plain svd uses no calibration text");
    }
    int samples = args.integer("samples", DEFAULT_SAMPLES);
    int seqLenArg = args.integer("seq-len", DEFAULT_SEQ_LEN);
    if (samples < 1 || seqLenArg < 2) {
      throw new UsageException("--samples must be >= 1 and --seq-len >= 2");
    }
    Path outDir = args.requiredPath("out");
    if (Files.exists(outDir)) {
      try (var entries = Files.list(outDir)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + outDir + " must be absent or empty");
        }
      }
    }
    int maxBytes = args.integer("max-bytes", DEFAULT_EVAL_BYTES);
    boolean eval = !args.has("no-eval");
    TableText held = eval ? TableText.fromArgs(args, maxBytes) : null;
    FactorizeSpec spec = new FactorizeSpec(method, rule, linears, args.has("merge"));
    ModelConfig config = ModelConfig.read(model);
    int seqLen = Math.min(seqLenArg, config.maxPositions());
    long start = System.nanoTime();
    CalibrationText[] text = new CalibrationText[1];
    if (method.calibrated() && calibrationFile == null) {
      err.println(
          "note: no --calibration given; svd_llm calibrates on the bundled English Europarl"
              + " training text ("
              + Corpus.BUILTIN_EUROPARL
              + ")");
    }
    err.printf("factorizing %s with %s, %s%n", model, method.key(), rule);
    FactorizationReport report;
    try {
      report =
          Factorization.run(
              spec,
              model,
              outDir,
              () -> {
                try {
                  text[0] =
                      calibrationFile == null
                          ? CalibrationText.builtin()
                          : CalibrationText.file(calibrationFile);
                  try (TextTokenizer tok = Tokenizers.forModel(model)) {
                    List<int[]> w = text[0].corpus().calibrationSamples(tok, samples, seqLen, SEED);
                    err.printf(
                        "calibration: %d windows of %d tokens from %s (%.1f s)%n",
                        w.size(), seqLen, text[0].source(), seconds(start));
                    return w;
                  }
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              },
              (layer, layers, ms) -> {
                long kept =
                    ms.stream().mapToLong(FactorizationReport.Matrix::parametersAfter).sum();
                long was =
                    ms.stream().mapToLong(FactorizationReport.Matrix::parametersBefore).sum();
                err.printf(
                    Locale.ROOT,
                    "layer %d/%d: %d linears, ranks %s, %.1f%% of their parameters (%.1f s)%n",
                    layer + 1,
                    layers,
                    ms.size(),
                    ms.stream().map(m -> Integer.toString(m.rank())).toList(),
                    was == 0 ? 100.0 : 100.0 * kept / was,
                    seconds(start));
              });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    ObjectNode summary = report.toJson();
    summary.put("out", outDir.toAbsolutePath().toString());
    if (text[0] != null) {
      ObjectNode cal = summary.putObject("calibration");
      cal.put("source", text[0].source());
      cal.put("sha256", text[0].sha256());
      cal.put("samples", samples);
      cal.put("seq_len", seqLen);
    }
    ObjectMapper json = new ObjectMapper();
    ObjectNode provenance = json.createObjectNode();
    provenance.put("tool", "compactor factorize");
    ArrayNode cmd = provenance.putArray("command_line");
    cmd.add("factorize");
    for (String a : argv) {
      cmd.add(a);
    }
    provenance.put("created", Instant.now().toString());
    provenance.put("input_dir", model.toAbsolutePath().toString());
    provenance.put("stage", "factorize");
    provenance.put(
        "loads_in",
        spec.merge()
            ? "any runtime that loads the input (dense X.weight)"
            : "compactor only (X.u.weight/X.v.weight with compactor_low_rank); --merge for"
                + " HF/vLLM/llama.cpp");
    provenance.set("factorize", summary.deepCopy());
    Files.writeString(
        outDir.resolve(PROVENANCE_FILE),
        json.writerWithDefaultPrettyPrinter().writeValueAsString(provenance));
    HeldOutQuality quality = null;
    if (eval) {
      quality = HeldOutQuality.measure(model, outDir, held, err);
      quality.putJson(summary);
    }
    summary.put("seconds", seconds(start));
    if (args.has("json")) {
      out.println(json.writeValueAsString(summary));
      return 0;
    }
    out.printf("wrote %s (%s, %s%s)%n", outDir, method.key(), rule, spec.merge() ? ", merged" : "");
    out.printf(
        Locale.ROOT,
        "%-44s %11s %6s %10s %10s %8s%n",
        "linear",
        "shape",
        "rank",
        "before",
        "after",
        "energy");
    for (FactorizationReport.Matrix m : report.matrices()) {
      out.printf(
          Locale.ROOT,
          "%-44s %11s %6s %,10d %,10d %8.4f%n",
          m.name(),
          m.out() + "x" + m.in(),
          m.rank() == 0 ? "dense" : Integer.toString(m.rank()),
          m.parametersBefore(),
          m.parametersAfter(),
          m.energy());
    }
    out.printf(
        Locale.ROOT,
        "parameters %,d -> %,d (%.1f%%); decoder linear multiply-adds per token %,d -> %,d (%.1f%%)%n",
        report.parametersBefore(),
        report.parametersAfter(),
        100.0 * report.parametersAfter() / report.parametersBefore(),
        report.linearMacsBefore(),
        report.linearMacsAfter(),
        100.0 * report.linearMacsAfter() / report.linearMacsBefore());
    if (quality != null) {
      quality.print(out);
    }
    return 0;
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
