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
import dev.compactor.core.prune.depth.DepthPruning;
import dev.compactor.core.prune.depth.DepthScorer;
import dev.compactor.core.prune.depth.DepthScores;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

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

  /** Provenance file a depth-pruned model carries, as {@code compactor quantize} writes. */
  static final String PROVENANCE_FILE = "compactor.json";

  @Override
  public String name() {
    return "prune";
  }

  @Override
  public String summary() {
    return "prune a model (magnitude|wanda|sparsegpt) to a sparsity or an N:M pattern,"
        + " structurally (heads, MLP channels), or drop whole layers";
  }

  @Override
  public String usage() {
    return "--model DIR --method magnitude|wanda|sparsegpt (--sparsity S | --pattern N:M)"
        + " [--calibration FILE] [--samples N] [--seq-len N]"
        + " [--format dense|sparse-24-bitmask|sparse-bitmask]"
        + " [--wbits 4|8 [--group-size G] [--asymmetric]] --out DIR [--json]"
        + "\n       compactor prune --model DIR [--heads F] [--channels F]"
        + " [--importance activation|fluctuation] [--head-mode kv_groups|query_heads]"
        + " [--widths uniform|per_layer]"
        + " [--compensate] [--calibration FILE] [--samples N] [--seq-len N] --out DIR [--json]"
        + "\n       compactor prune --model DIR --drop-layers N"
        + " [--depth-method block_influence|angular] [--depth-tokens all|last]"
        + " [--calibration FILE] [--samples N] [--seq-len N] --out DIR [--json]"
        + " (N = 0: scores only, no --out)"
        + "\n       any of the above (not N = 0) "
        + RecoveryArgs.USAGE
        + ": distil the pruned model from the input with its zeros kept; kept only if held-out"
        + " KL falls (--rounds R > 1: iterative, unstructured only)";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    RecoveryArgs.Split split = RecoveryArgs.split(argv);
    if (split.recovery() != null) {
      return RecoveryRun.run(split, this::prune, out, err);
    }
    return prune(argv, out, err);
  }

  private int prune(String[] argv, PrintStream out, PrintStream err) throws Exception {
    if (StructuredPruneRequest.asked(argv)) {
      return StructuredPruneRun.run(argv, out, err);
    }
    PruneRequest r = PruneRequest.parse(argv);
    if (r.depth() != null) {
      return depth(argv, r, out, err);
    }
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
    PruneArgs.listFiles(summary.putArray("files"), r.out());
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

  /**
   * {@code --drop-layers N}: scores every decoder layer on the calibration windows (progress per
   * layer on stderr), prints the per-layer table (or JSON) and, for N >= 1, writes the model
   * without the N layers the depth method picks, with {@code compactor.json} provenance.
   */
  private static int depth(String[] argv, PruneRequest r, PrintStream out, PrintStream err)
      throws Exception {
    PruneRequest.Depth d = r.depth();
    long start = System.nanoTime();
    CalibrationText text =
        r.calibration() == null ? CalibrationText.builtin() : CalibrationText.file(r.calibration());
    ModelConfig config = ModelConfig.read(r.model());
    int seqLen = Math.min(r.seqLen(), config.maxPositions());
    if (r.calibration() == null) {
      err.println(
          "note: no --calibration given; layer scores use the bundled English Europarl training"
              + " text ("
              + Corpus.BUILTIN_EUROPARL
              + ")");
    }
    List<int[]> windows;
    try (TextTokenizer tokenizer = Tokenizers.forModel(r.model())) {
      windows = text.corpus().calibrationSamples(tokenizer, r.samples(), seqLen, SEED);
    }
    err.printf(
        "calibration: %d windows of %d tokens from %s (%.1f s)%n",
        windows.size(), seqLen, text.source(), seconds(start));
    DepthScorer.Progress progress =
        (layer, layers, bi) ->
            err.printf(
                "scored layer %d/%d: block influence %.5f (%.1f s)%n",
                layer + 1, layers, bi, seconds(start));
    DepthScores scores;
    int[] removed;
    ObjectNode summary;
    if (d.scoresOnly()) {
      err.printf("scoring the %d layers of %s%n", config.numLayers(), r.model());
      scores =
          DepthPruning.score(
              r.model(), windows, DepthPruning.SCORES_ONLY_MAX_BLOCK, d.positions(), progress);
      removed = new int[0];
      summary = scores.toJson();
    } else {
      err.printf(
          "dropping %d of %d layers of %s by %s%n",
          d.drop(), config.numLayers(), r.model(), d.method().key());
      DepthPruning.Result result =
          DepthPruning.run(
              r.model(), r.out(), d.method(), d.drop(), windows, d.positions(), progress, Map.of());
      scores = result.scores();
      removed = result.removed();
      summary = result.toJson();
      summary.put("out", r.out().toAbsolutePath().toString());
    }
    ObjectNode cal = summary.putObject("calibration");
    cal.put("source", text.source());
    cal.put("sha256", text.sha256());
    cal.put("seq_len", seqLen);
    cal.put("samples", windows.size());
    cal.put("tokens", (long) windows.size() * seqLen);
    ObjectMapper json = new ObjectMapper();
    if (!d.scoresOnly()) {
      ObjectNode provenance = json.createObjectNode();
      provenance.put("tool", "compactor prune");
      ArrayNode cmd = provenance.putArray("command_line");
      cmd.add("prune");
      for (String a : argv) {
        cmd.add(a);
      }
      provenance.put("created", Instant.now().toString());
      provenance.put("input_dir", r.model().toAbsolutePath().toString());
      provenance.put("stage", "prune");
      provenance.set("depth", summary.deepCopy());
      Files.writeString(
          r.out().resolve(PROVENANCE_FILE),
          json.writerWithDefaultPrettyPrinter().writeValueAsString(provenance));
      PruneArgs.listFiles(summary.putArray("files"), r.out());
    }
    summary.put("seconds", seconds(start));
    if (r.json()) {
      out.println(json.writeValueAsString(summary));
      return 0;
    }
    out.print(depthTable(scores, removed));
    if (!d.scoresOnly()) {
      out.printf(
          "removed layers %s by %s; wrote %s (%d layers)%n",
          Arrays.toString(removed), d.method().key(), r.out(), config.numLayers() - d.drop());
    }
    return 0;
  }

  /**
   * One row per layer: block influence, then the angular distance of the block of n layers starting
   * there for n = 1..N (blank where the block would run past the last layer), and whether the layer
   * was removed; then each n's best block.
   */
  static String depthTable(DepthScores s, int[] removed) {
    StringBuilder b = new StringBuilder();
    b.append(
        String.format(
            "layer scores on %,d hidden-state vectors (%s positions)%n",
            s.vectors(), s.positions().key()));
    b.append(String.format("%5s %10s", "layer", "BI"));
    for (int n = 1; n <= s.maxBlock(); n++) {
      b.append(String.format(" %9s", "d(l," + n + ")"));
    }
    b.append(String.format("  removed%n"));
    for (int l = 0; l < s.layers(); l++) {
      b.append(String.format("%5d %10.5f", l, s.blockInfluence()[l]));
      for (int n = 1; n <= s.maxBlock(); n++) {
        b.append(l + n <= s.layers() ? String.format(" %9.5f", s.angular(l, n)) : " ".repeat(10));
      }
      int layer = l;
      boolean gone = Arrays.stream(removed).anyMatch(i -> i == layer);
      b.append(gone ? "  yes" : "").append(System.lineSeparator());
    }
    for (int n = 1; n <= s.maxBlock() && n < s.layers(); n++) {
      int start = s.bestBlock(n);
      b.append(
          String.format(
              "closest block of %d: layers %d..%d, d = %.5f%n",
              n, start, start + n - 1, s.angular(start, n)));
    }
    return b.toString();
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
