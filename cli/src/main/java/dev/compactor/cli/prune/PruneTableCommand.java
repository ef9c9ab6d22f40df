package dev.compactor.cli.prune;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.table.PruningTable;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor prune-table}: prunes one model (the tiny reference model by default) with
 * magnitude, Wanda and SparseGPT at 50 % unstructured, 4:8 and 2:4, and magnitude and Wanda at 50 %
 * once or in three rounds with recovery by distillation in between, and prints how far each moved
 * from the dense model on held-out text (perplexity, KL divergence, top-1 agreement) next to the
 * parameters left, the stored size and the measured single-request speed. Wanda and SparseGPT
 * calibrate on the bundled Europarl training split; the default evaluation text is the disjoint
 * test split.
 */
public final class PruneTableCommand implements Command {

  private static final int DEFAULT_MAX_BYTES = 100_000;

  /** Calibration windows (of the evaluation window length) for Wanda and SparseGPT. */
  static final int SAMPLES = 64;

  static final long SEED = 0;

  /**
   * Recovery: KL to the dense model only (T 1, alpha 1), 36 steps of 4 windows, lr 1e-3: short, so
   * the table's doc test stays within the test budget; longer recovery recovers more.
   */
  static final DistillationSpec RECOVERY =
      new DistillationSpec(1f, 1f, 36, 4, 1e-3f, 3, 0f, 1f, 0, 1234L);

  /** Rounds of the iterative rows (the recovery steps split evenly between them). */
  static final int ROUNDS = 3;

  /** Distillation windows for recovery (tokens per window, before the shifted target). */
  static final int RECOVERY_SEQ = 128;

  static final int RECOVERY_WINDOWS = 256;

  @Override
  public String name() {
    return "prune-table";
  }

  @Override
  public String summary() {
    return "quality, parameters, size and speed of every pruning method versus the dense model";
  }

  @Override
  public String usage() {
    return "[--model DIR (default: tiny reference model)] [--text FILE] [--max-bytes N]"
        + " [--recovery-lr F (default 1e-3)] [--recovery-steps N (default 36, a multiple of 3)]"
        + " [--latency-repeats N (default 3; the speed block shows their median)] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model", "text", "max-bytes", "recovery-lr", "recovery-steps", "latency-repeats"),
            Set.of("json"));
    DistillationSpec recovery = recovery(args);
    int repeats = args.integer("latency-repeats", PruningTable.LATENCY_REPEATS);
    if (repeats < 1) {
      throw new UsageException("--latency-repeats: expected at least 1, found " + repeats);
    }
    Path model =
        args.present("model") ? Path.of(args.required("model")) : TinyReferenceModel.shipped();
    int seqLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, ModelConfig.read(model).maxPositions());
    TableText.Inputs in = TableText.inputs(args, model, DEFAULT_MAX_BYTES, seqLen, SAMPLES, SEED);
    TableText held = in.text();
    int[] tokens = in.tokens();
    List<int[]> train;
    try (TextTokenizer tok = Tokenizers.forModel(model)) {
      train = TableText.calibrationWindows(tok, RECOVERY_WINDOWS, RECOVERY_SEQ + 1, SEED + 1);
    }
    Path work = Files.createTempDirectory("compactor-prune-table");
    try {
      PruningTable table = new PruningTable(model, work, tokens, in.calibration(), seqLen, repeats);
      long t0 = System.nanoTime();
      List<PruningTable.Variant> variants = new ArrayList<>(table.unstructured());
      variants.addAll(table.recovered(recovery, ROUNDS, train));
      variants.addAll(table.structured(recovery, train));
      variants.addAll(table.depth(recovery, train));
      List<PruningTable.Row> rows =
          table.run(
              variants, (phase, done, total) -> err.printf("%s: %d/%d rows%n", phase, done, total));
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (args.has("json")) {
        out.println(json(model, held.name(), tokens.length, table.setup(), rows));
      } else {
        print(
            out,
            model,
            held.name(),
            tokens.length,
            table.setup(),
            rows,
            recovery,
            repeats,
            seconds);
      }
    } finally {
      TableText.deleteRecursively(work);
    }
    return 0;
  }

  /**
   * {@link #RECOVERY} with {@code --recovery-lr} and {@code --recovery-steps} (warm-up a twelfth of
   * the steps, as 3 of 36): a model that ended its training at a low rate needs a lower one.
   */
  static DistillationSpec recovery(Args args) throws UsageException {
    double lr = args.number("recovery-lr", RECOVERY.learningRate());
    int steps = args.integer("recovery-steps", RECOVERY.steps());
    if (!(lr > 0 && lr < 1)) {
      throw new UsageException("--recovery-lr: expected a rate in (0, 1), found " + lr);
    }
    if (steps < ROUNDS || steps % ROUNDS != 0) {
      throw new UsageException(
          "--recovery-steps: expected a positive multiple of "
              + ROUNDS
              + " (the iterative rows split them into "
              + ROUNDS
              + " rounds), found "
              + steps);
    }
    return new DistillationSpec(
        RECOVERY.temperature(),
        RECOVERY.alpha(),
        steps,
        RECOVERY.batchSize(),
        (float) lr,
        Math.max(1, steps / 12),
        RECOVERY.weightDecay(),
        RECOVERY.maxGradNorm(),
        RECOVERY.checkpointEvery(),
        RECOVERY.seed());
  }

  /** How the line that ends the measured-quality block and starts the timing block begins. */
  public static final String SPEED_HEADER = "speed (median of";

  private static void print(
      PrintStream out,
      Path model,
      String textName,
      int tokens,
      PruningTable.Setup setup,
      List<PruningTable.Row> rows,
      DistillationSpec recovery,
      int repeats,
      double seconds) {
    out.printf("model: %s (%s)%n", model, TableText.weightsHash(model));
    out.printf(
        "text: %s, %d tokens, windows of %d; Wanda/SparseGPT calibration: %d windows of the"
            + " Europarl training split%n",
        textName, tokens, setup.seqLen(), setup.calibrationSamples());
    out.printf(
        Locale.ROOT,
        "%-20s %10s %9s %10s %7s %8s %12s %12s%n",
        "method",
        "ppl",
        "dPPL%",
        "KL",
        "top1%",
        "removed",
        "nonzero lin",
        "bytes");
    for (PruningTable.Row r : rows) {
      out.printf(
          Locale.ROOT,
          "%-20s %10.4f %+9.3f %10.6f %7.2f %8.4f %,12d %,12d%n",
          r.name(),
          r.perplexity(),
          r.deltaPplPercent(),
          r.result().klDivergence(),
          100 * r.result().top1Agreement(),
          r.removed(),
          r.nonzeroLinearParams(),
          r.bytes());
    }
    out.println(
        "removed: fraction of the dense model's decoder linear weights zeroed or removed. nonzero"
            + " lin: decoder linear weights left. bytes: the weight files (zeros stored, dense"
            + " safetensors).");
    out.printf(
        Locale.ROOT,
        "+rec: pruned once, then %d recovery steps (distillation from the dense model, %d windows"
            + " of %d training tokens per step, lr %s, zeros kept). iter%d: %d rounds of the cubic"
            + " schedule, %d recovery steps after each (the same %d steps in all). Structured rows:"
            + " FLAP fluctuation importance, uniform widths; both = the KV groups and 25%% of the"
            + " channels, with FLAP's bias compensation. Depth: the layers of lowest block"
            + " influence removed; +heal: then the same recovery.%n",
        recovery.steps(),
        recovery.batchSize(),
        RECOVERY_SEQ,
        recovery.learningRate(),
        ROUNDS,
        ROUNDS,
        recovery.steps() / ROUNDS,
        recovery.steps());
    out.printf(
        Locale.ROOT,
        "%s %s, prompt %d tokens, greedy decode %d; measured on this machine, not compared by"
            + " the doc test):%n",
        SPEED_HEADER,
        repeats == 1 ? "1 probe" : repeats + " probes",
        PruningTable.LATENCY_PROMPT,
        rows.get(0).latency().decodeTokens());
    out.printf(Locale.ROOT, "%-20s %16s %12s%n", "method", "prefill ms/tok", "decode tok/s");
    for (PruningTable.Row r : rows) {
      out.printf(
          Locale.ROOT,
          "%-20s %16.3f %12.1f%n",
          r.name(),
          r.latency().prefillMsPerToken(),
          r.latency().decodeTokensPerSecond());
    }
    out.printf(
        "Zeros run on dense kernels: no speed-up is expected from unstructured or N:M rows here."
            + " %.0f s.%n",
        seconds);
  }

  private static String json(
      Path model,
      String textName,
      int tokens,
      PruningTable.Setup setup,
      List<PruningTable.Row> rows) {
    ObjectNode root = TableText.jsonHeader(model, textName, tokens, setup.seqLen());
    root.put("calibrationSamples", setup.calibrationSamples());
    ArrayNode a = root.putArray("rows");
    for (PruningTable.Row r : rows) {
      a.addObject()
          .put("method", r.name())
          .put("perplexity", r.perplexity())
          .put("deltaPplPercent", r.deltaPplPercent())
          .put("klDivergence", r.result().klDivergence())
          .put("top1Agreement", r.result().top1Agreement())
          .put("sparsity", r.sparsity())
          .put("removed", r.removed())
          .put("linearParams", r.linearParams())
          .put("nonzeroLinearParams", r.nonzeroLinearParams())
          .put("parameters", r.parameters())
          .put("bytes", r.bytes())
          .put("prefillMsPerToken", r.latency().prefillMsPerToken())
          .put("decodeTokensPerSecond", r.latency().decodeTokensPerSecond());
    }
    return root.toString();
  }
}
