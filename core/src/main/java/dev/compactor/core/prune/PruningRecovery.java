package dev.compactor.core.prune;

import ai.djl.Device;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Recovery after pruning, and iterative pruning with recovery between the steps: the pruned model
 * is trained as a student of the dense original (knowledge distillation, {@link Distiller}), with
 * every pruned weight held at zero throughout (the distiller keeps the zeros of decoder linears),
 * so recovery never undoes the pruning.
 *
 * <p>Iterative pruning follows the gradual schedule of Zhu and Gupta (2017): the sparsity after
 * round k of n is {@code s_k = s (1 - (1 - k/n)^3)}, pruning hard early, when there is most
 * redundancy, and gently at the end. Each round prunes the recovered model of the previous one.
 */
public final class PruningRecovery {

  private PruningRecovery() {}

  /** One round: the sparsity it pruned to and its recovery. */
  public record Round(double sparsity, PruningReport pruning, DistillationReport recovery) {}

  /**
   * The cubic schedule: the target sparsity after each of {@code rounds} rounds, the last equal to
   * {@code finalSparsity}.
   */
  public static double[] cubicSchedule(double finalSparsity, int rounds) {
    if (rounds < 1) {
      throw new IllegalArgumentException("rounds must be >= 1, found " + rounds);
    }
    if (!(finalSparsity > 0 && finalSparsity < 1)) {
      throw new IllegalArgumentException("sparsity must be in (0, 1), found " + finalSparsity);
    }
    double[] s = new double[rounds];
    for (int k = 1; k <= rounds; k++) {
      double left = 1.0 - (double) k / rounds;
      s[k - 1] = finalSparsity * (1 - left * left * left);
    }
    s[rounds - 1] = finalSparsity;
    return s;
  }

  /**
   * Trains {@code pruned} against the teacher {@code dense} with the pruned zeros kept, and writes
   * the recovered model to {@code out} (in {@code pruned}'s dtype, with its tokenizer and auxiliary
   * files).
   *
   * @param windows training windows of {@code seq + 1} tokens (the distiller's convention)
   * @param scratch an empty directory for the run's checkpoints
   */
  public static DistillationReport recover(
      Path dense,
      Path pruned,
      Path out,
      List<int[]> windows,
      DistillationSpec spec,
      Path scratch,
      Device device)
      throws IOException {
    // stored as the pruned model was (a BF16 model stays BF16: same size, comparable files)
    DType storeAs = ModelDirectory.open(pruned).dominantDType();
    DistillationReport report;
    try (Transformer teacher = Transformer.load(dense, device);
        Transformer student = Transformer.load(pruned, device)) {
      report =
          new Distiller(spec, new LocalCheckpointSink(scratch, 1))
              .distill(teacher, student, windows);
      student.save(
          out,
          storeAs,
          Map.of(
              "compactor.prune.recovery.steps",
              Long.toString(report.totalSteps()),
              "compactor.prune.recovery.teacher",
              "dense original"));
    }
    ModelDirectory.copyAuxiliaryFiles(pruned, out);
    return report;
  }

  /**
   * What a checked recovery did.
   *
   * @param report the distillation; null when it diverged
   * @param klBefore mean per-token KL(dense || pruned) on the held-out windows; NaN when there were
   *     none
   * @param klAfter the same for the recovered model; NaN when it diverged or was not measured
   * @param kept true when the output holds the recovered model, false when it holds the pruned
   *     model unchanged (recovery diverged or did not lower the held-out KL)
   * @param note why the pruned model was kept or the check skipped; null otherwise
   */
  public record Checked(
      DistillationReport report, double klBefore, double klAfter, boolean kept, String note) {}

  /**
   * {@link #recover} checked on held-out windows: the recovered model is kept only when it is
   * closer to the dense model than the pruned one was (lower mean KL); otherwise, or when the
   * distillation diverges, {@code out} gets the pruned model unchanged and the result says why.
   * Short recovery at a learning rate too high for the model makes it worse, and a pipeline must
   * not publish that as an improvement.
   *
   * @param heldOut windows of {@code seq + 1} tokens the training never reads (the first {@code
   *     seq} are scored); empty to skip the check
   */
  public static Checked recoverIfBetter(
      Path dense,
      Path pruned,
      Path out,
      List<int[]> windows,
      List<int[]> heldOut,
      DistillationSpec spec,
      Path scratch,
      Device device)
      throws IOException {
    double before = heldOut.isEmpty() ? Double.NaN : heldOutKl(dense, pruned, heldOut, device);
    DistillationReport report;
    try {
      report = recover(dense, pruned, out, windows, spec, scratch, device);
    } catch (IllegalStateException diverged) {
      replaceWith(pruned, out);
      return new Checked(
          null,
          before,
          Double.NaN,
          false,
          "recovery diverged (" + diverged.getMessage() + "); kept the pruned model");
    }
    if (heldOut.isEmpty()) {
      return new Checked(
          report, before, Double.NaN, true, "no held-out text: recovery kept unchecked");
    }
    double after = heldOutKl(dense, out, heldOut, device);
    if (after < before) {
      return new Checked(report, before, after, true, null);
    }
    replaceWith(pruned, out);
    return new Checked(
        report,
        before,
        after,
        false,
        String.format(
            java.util.Locale.ROOT,
            "recovery raised the held-out KL from %.6f to %.6f; kept the pruned model (try a"
                + " lower learning rate or more steps)",
            before,
            after));
  }

  private static double heldOutKl(Path dense, Path model, List<int[]> heldOut, Device device)
      throws IOException {
    try (Transformer teacher = Transformer.load(dense, device);
        Transformer student = Transformer.load(model, device)) {
      return Distiller.meanKl(teacher, student, heldOut, 4);
    }
  }

  /** Makes {@code out} an exact copy of the model directory {@code source}. */
  private static void replaceWith(Path source, Path out) throws IOException {
    Pruning.deleteTree(out);
    Files.createDirectories(out);
    try (var files = Files.walk(source)) {
      for (Path f : (Iterable<Path>) files.sorted()::iterator) {
        Path target = out.resolve(source.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(target);
        } else {
          Files.copy(f, target);
        }
      }
    }
  }

  /**
   * Prunes {@code dense} to {@code spec}'s sparsity in {@code rounds} rounds of the cubic schedule,
   * recovering after each with {@code recoveryPerRound}, and leaves the last round's model in
   * {@code out}. With one round it is one-shot pruning followed by recovery.
   *
   * @param spec the method and final sparsity; N:M patterns are fixed by construction and are
   *     refused (prune them once and recover)
   * @param work an empty scratch directory for the rounds' models
   * @param calibration calibration windows for Wanda and SparseGPT (asked for on each round, so
   *     they see the recovered model's activations)
   */
  public static List<Round> iterative(
      PruningSpec spec,
      int rounds,
      DistillationSpec recoveryPerRound,
      Path dense,
      Path work,
      Path out,
      Supplier<List<int[]>> calibration,
      List<int[]> trainWindows,
      Device device)
      throws IOException {
    if (spec.pattern() != null) {
      throw new UnsupportedOperationException(
          "not supported yet: iterative pruning to an N:M pattern (" + spec.pattern() + ")");
    }
    double[] schedule = cubicSchedule(spec.sparsity(), rounds);
    List<Round> done = new ArrayList<>();
    Path current = dense;
    Files.createDirectories(work);
    for (int k = 0; k < rounds; k++) {
      PruningSpec step =
          new PruningSpec(spec.method(), schedule[k], spec.granularity(), spec.linears(), null);
      Path pruned = work.resolve("round-" + (k + 1) + "-pruned");
      PruningReport report = Pruning.run(step, current, pruned, calibration, device);
      Path recovered = k == rounds - 1 ? out : work.resolve("round-" + (k + 1) + "-recovered");
      DistillationReport recovery =
          recover(
              dense,
              pruned,
              recovered,
              trainWindows,
              recoveryPerRound,
              work.resolve("round-" + (k + 1) + "-checkpoints"),
              device);
      done.add(new Round(schedule[k], report, recovery));
      current = recovered;
    }
    return done;
  }
}
