package dev.compactor.cli.prune;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Command;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * {@code compactor prune}: zeroes weights of a Hugging Face model's decoder linears by magnitude,
 * Wanda or SparseGPT ({@link Pruning#run}, the code the pruning service runs), unstructured to
 * {@code --sparsity} per output row or semi-structured to {@code --pattern N:M}, and writes the
 * pruned model (same names, dtypes and shapes; config and tokenizer copied) to {@code --out}.
 * Phases go to stderr; the summary (sparsity counted from the written values) to stdout, as JSON
 * with {@code --json}.
 */
public final class PruneCommand implements Command {

  /** Seed of the calibration window offsets, the pruning stage's, so a run is reproducible. */
  static final long SEED = 1234;

  @Override
  public String name() {
    return "prune";
  }

  @Override
  public String summary() {
    return "prune a model (magnitude|wanda|sparsegpt) to a sparsity or an N:M pattern, or"
        + " structurally (heads, MLP channels)";
  }

  @Override
  public String usage() {
    return "--model DIR --method magnitude|wanda|sparsegpt (--sparsity S | --pattern N:M)"
        + " [--calibration FILE] [--samples N] [--seq-len N]"
        + " [--format dense|sparse-24-bitmask|sparse-bitmask]"
        + " [--wbits 4|8 [--group-size G] [--asymmetric]] --out DIR [--json]"
        + "\n       compactor prune --model DIR [--heads F] [--channels F]"
        + " [--importance activation|fluctuation] [--head-mode kv_groups|query_heads]"
        + " [--widths uniform]"
        + " [--compensate] [--calibration FILE] [--samples N] [--seq-len N] --out DIR [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    if (StructuredPruneRequest.asked(argv)) {
      return StructuredPruneRun.run(argv, out, err);
    }
    PruneRequest r = PruneRequest.parse(argv);
    PruningSpec spec = r.spec();
    String method = spec.method().name().toLowerCase(Locale.ROOT);
    long start = System.nanoTime();
    CalibrationText[] text = new CalibrationText[1];
    int[] seqLen = new int[1];
    Supplier<List<int[]>> calibration =
        () -> {
          try {
            text[0] = CalibrationText.file(r.calibration());
            seqLen[0] = Math.min(r.seqLen(), ModelConfig.read(r.model()).maxPositions());
            try (TextTokenizer tokenizer = Tokenizers.forModel(r.model())) {
              List<int[]> windows =
                  text[0].corpus().calibrationSamples(tokenizer, r.samples(), seqLen[0], SEED);
              err.printf(
                  "calibration: %d windows of %d tokens from %s (%.1f s)%n",
                  windows.size(), seqLen[0], text[0].source(), seconds(start));
              return windows;
            }
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        };
    if (r.calibrated() && r.calibration() == null) {
      err.println(
          "note: no --calibration given; "
              + method
              + " calibrates on the bundled English Europarl training text ("
              + Corpus.BUILTIN_EUROPARL
              + ")");
    }
    err.printf(
        "pruning %s with %s to %s%n",
        r.model(), method, spec.pattern() != null ? spec.pattern() : "sparsity " + spec.sparsity());
    PruningReport report;
    try {
      report = Pruning.run(spec, r.output(), r.model(), r.out(), calibration, Device.cpu());
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    double total = seconds(start);
    err.printf(
        "pruned %d tensors, copied %d (%.1f s)%n",
        report.tensors().size(), report.copiedTensors(), total);

    ObjectMapper json = new ObjectMapper();
    ObjectNode summary = json.createObjectNode();
    summary.put("out", r.out().toAbsolutePath().toString());
    summary.put("method", method);
    summary.put("target_sparsity", spec.sparsity());
    if (spec.pattern() != null) {
      summary.put("pattern", spec.pattern().toString());
    } else {
      summary.put("granularity", spec.granularity().name().toLowerCase(Locale.ROOT));
    }
    summary.put("format", r.output().format().value());
    if (r.output().wbits() != 0) {
      summary.put("wbits", r.output().wbits());
      summary.put("group_size", r.output().groupSize());
      summary.put("symmetric", r.output().symmetric());
    }
    summary.put("overall_sparsity", report.overallSparsity());
    summary.put("pruned_tensors", report.tensors().size());
    summary.put("pruned_elements", report.prunedElements());
    summary.put("copied_tensors", report.copiedTensors());
    if (r.calibrated()) {
      ObjectNode cal = summary.putObject("calibration");
      if (text[0] != null) {
        cal.put("source", text[0].source());
        cal.put("sha256", text[0].sha256());
        cal.put("seq_len", seqLen[0]);
      }
      cal.put("samples", r.samples());
      cal.put("tokens", report.calibrationTokens());
    }
    if (!report.expertTokens().isEmpty()) {
      summary.put("uncalibrated_experts", report.uncalibratedExperts().size());
    }
    ArrayNode tensors = summary.putArray("tensors");
    for (PruningReport.TensorSparsity t : report.tensors()) {
      tensors
          .addObject()
          .put("name", t.name())
          .put("elements", t.elements())
          .put("zeros", t.zeros())
          .put("sparsity", t.sparsity());
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
    summary.put("seconds", total);
    if (r.json()) {
      out.println(json.writeValueAsString(summary));
    } else {
      out.printf(
          "wrote %s (%s, %s)%n",
          r.out(), method, spec.pattern() != null ? spec.pattern() : "sparsity " + spec.sparsity());
      for (PruningReport.TensorSparsity t : report.tensors()) {
        out.printf("  %-48s %6.2f %% zero%n", t.name(), 100 * t.sparsity());
      }
      out.printf(
          "overall sparsity %.4f over %,d weights of %d tensors%n",
          report.overallSparsity(), report.prunedElements(), report.tensors().size());
      if (!report.uncalibratedExperts().isEmpty()) {
        out.printf(
            "%d experts had too few routed calibration tokens and were pruned by magnitude%n",
            report.uncalibratedExperts().size());
      }
    }
    return 0;
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
