package dev.compactor.cli.prune;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningRecovery;
import dev.compactor.core.recipe.PruneParams;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code compactor prune ... --recover-steps N}: the pruning the other options ask for, written to
 * a scratch directory, then recovery by distillation from the input model with the pruned zeros (or
 * removed heads and layers) kept, checked on held-out windows of the calibration text's validation
 * split ({@link PruningRecovery#recoverIfBetter}): {@code --out} gets the recovered model only when
 * it is closer to the input than the pruned one. With {@code --rounds R > 1} the sparsity is
 * reached in R rounds of the cubic schedule, recovering after each (unstructured weight pruning
 * only).
 */
final class RecoveryRun {

  private RecoveryRun() {}

  interface Prune {
    int run(String[] argv, PrintStream out, PrintStream err) throws Exception;
  }

  static int run(RecoveryArgs.Split split, Prune prune, PrintStream out, PrintStream err)
      throws Exception {
    String[] argv = split.pruneArgv();
    PruneParams.Recovery recovery = split.recovery();
    String modelArg = value(argv, "model");
    String outArg = value(argv, "out");
    if (modelArg == null || outArg == null) {
      throw new UsageException("recovery needs --model DIR and --out DIR");
    }
    Path model = Path.of(modelArg);
    PruneArgs.requireModelDir(model);
    Path target = Path.of(outArg);
    if (Files.exists(target)) {
      try (var entries = Files.list(target)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + target + " must be absent or empty");
        }
      }
    }
    boolean json = Arrays.asList(argv).contains("--json");
    String calibration = value(argv, "calibration");
    CalibrationText text =
        calibration == null
            ? CalibrationText.builtin()
            : CalibrationText.file(Path.of(calibration));
    PruneParams.RecoveryWindows windows;
    try (TextTokenizer tok = Tokenizers.forModel(model)) {
      windows = recovery.windows(text.corpus(), tok, ModelConfig.read(model).maxPositions());
    }
    if (windows.note() != null) {
      err.println("note: " + windows.note());
    }
    List<int[]> train = windows.train();
    List<int[]> heldOut = windows.heldOut();
    int seq = windows.seq();
    Path work = Files.createTempDirectory("compactor-prune-recovery");
    try {
      if (recovery.rounds() > 1) {
        return iterative(argv, recovery, model, target, work, train, heldOut, json, out, err);
      }
      Path scratch = work.resolve("pruned");
      ByteArrayOutputStream captured = new ByteArrayOutputStream();
      int code;
      try (PrintStream c = new PrintStream(captured, true, StandardCharsets.UTF_8)) {
        code = prune.run(withOut(argv, scratch), c, err);
      }
      if (code != 0) {
        return code;
      }
      err.printf(
          "recovery: %d steps at lr %s, batch %d, on %d windows of %d tokens from %s%n",
          recovery.steps(), recovery.lr(), recovery.batch(), train.size(), seq, text.source());
      PruningRecovery.Checked checked =
          PruningRecovery.recoverIfBetter(
              model,
              scratch,
              target,
              train,
              heldOut,
              recovery.perRound(),
              work.resolve("checkpoints"),
              Device.cpu());
      String pruned = captured.toString(StandardCharsets.UTF_8);
      if (json) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode summary = (ObjectNode) mapper.readTree(pruned);
        summary.put("out", target.toAbsolutePath().toString());
        ObjectNode r = summary.putObject("recovery");
        settings(r, recovery);
        r.put("kept", checked.kept());
        putKl(r, "held_out_kl_before", checked.klBefore());
        putKl(r, "held_out_kl_after", checked.klAfter());
        if (checked.note() != null) {
          r.put("note", checked.note());
        }
        PruneArgs.listFiles(summary.putArray("files"), target);
        out.println(mapper.writeValueAsString(summary));
      } else {
        out.print(pruned.replace(scratch.toString(), target.toString()));
        out.printf(
            Locale.ROOT,
            "recovery (%d steps): held-out KL to the input %.6f -> %.6f; %s%n",
            recovery.steps(),
            checked.klBefore(),
            checked.klAfter(),
            checked.kept() ? "kept the recovered model" : checked.note());
      }
      return 0;
    } finally {
      Pruning.deleteTree(work);
    }
  }

  private static int iterative(
      String[] argv,
      PruneParams.Recovery recovery,
      Path model,
      Path target,
      Path work,
      List<int[]> train,
      List<int[]> heldOut,
      boolean json,
      PrintStream out,
      PrintStream err)
      throws Exception {
    if (StructuredPruneRequest.asked(argv)) {
      throw new UsageException("--rounds > 1 (iterative pruning) needs --method and --sparsity");
    }
    PruneRequest r = PruneRequest.parse(withOut(argv, target));
    if (r.depth() != null || r.spec().pattern() != null) {
      throw new UsageException("--rounds > 1 (iterative pruning) needs unstructured --sparsity");
    }
    if (!r.output().equals(dev.compactor.core.prune.PruningOutput.DENSE)) {
      throw new UsageException(
          "not supported yet: recovery with --format or --wbits; recover dense, then quantize");
    }
    err.printf(
        "iterative pruning: %d rounds to sparsity %s, %d recovery steps each%n",
        recovery.rounds(), r.spec().sparsity(), recovery.perRound().steps());
    List<int[]> calibration = new ArrayList<>();
    List<PruningRecovery.Round> rounds =
        PruningRecovery.iterative(
            r.spec(),
            recovery.rounds(),
            recovery.perRound(),
            model,
            work.resolve("rounds"),
            target,
            () -> calibrationWindows(r, calibration),
            train,
            Device.cpu());
    double kl = Double.NaN;
    if (!heldOut.isEmpty()) {
      try (Transformer dense = Transformer.load(model, Device.cpu());
          Transformer pruned = Transformer.load(target, Device.cpu())) {
        kl = Distiller.meanKl(dense, pruned, heldOut, 4);
      }
    }
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode summary = mapper.createObjectNode();
    summary.put("out", target.toAbsolutePath().toString());
    summary.put("method", r.spec().method().name().toLowerCase(Locale.ROOT));
    summary.put("target_sparsity", r.spec().sparsity());
    ObjectNode rec = summary.putObject("recovery");
    settings(rec, recovery);
    putKl(rec, "held_out_kl_after", kl);
    var list = summary.putArray("rounds");
    for (PruningRecovery.Round round : rounds) {
      list.addObject()
          .put("sparsity", round.sparsity())
          .put("overall_sparsity", round.pruning().overallSparsity())
          .put("recovery_loss_first", round.recovery().startLoss())
          .put("recovery_loss_last", round.recovery().endLoss());
    }
    PruneArgs.listFiles(summary.putArray("files"), target);
    if (json) {
      out.println(mapper.writeValueAsString(summary));
    } else {
      for (PruningRecovery.Round round : rounds) {
        out.printf(
            Locale.ROOT,
            "round to sparsity %.4f: overall %.4f, recovery loss %.5f -> %.5f%n",
            round.sparsity(),
            round.pruning().overallSparsity(),
            round.recovery().startLoss(),
            round.recovery().endLoss());
      }
      out.printf(Locale.ROOT, "wrote %s; held-out KL to the input %.6f%n", target, kl);
    }
    return 0;
  }

  private static List<int[]> calibrationWindows(PruneRequest r, List<int[]> cache) {
    if (cache.isEmpty()) {
      try {
        CalibrationText text = CalibrationText.file(r.calibration());
        int seq = Math.min(r.seqLen(), ModelConfig.read(r.model()).maxPositions());
        try (TextTokenizer tok = Tokenizers.forModel(r.model())) {
          cache.addAll(text.corpus().calibrationSamples(tok, r.samples(), seq, PruneCommand.SEED));
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return cache;
  }

  private static void settings(ObjectNode r, PruneParams.Recovery recovery) {
    r.put("steps", recovery.steps());
    r.put("lr", recovery.lr());
    r.put("batch", recovery.batch());
    r.put("rounds", recovery.rounds());
    r.put("windows", recovery.windows());
    r.put("seq_len", recovery.seqLen());
  }

  private static void putKl(ObjectNode r, String key, double kl) {
    if (!Double.isNaN(kl)) {
      r.put(key, kl);
    }
  }

  /** The value of {@code --name} ({@code --name V} or {@code --name=V}), or null. */
  private static String value(String[] argv, String name) {
    for (int i = 0; i < argv.length; i++) {
      if (argv[i].equals("--" + name) && i + 1 < argv.length) {
        return argv[i + 1];
      }
      if (argv[i].startsWith("--" + name + "=")) {
        return argv[i].substring(name.length() + 3);
      }
    }
    return null;
  }

  /** {@code argv} with its {@code --out} value replaced by {@code dir}. */
  private static String[] withOut(String[] argv, Path dir) {
    String[] copy = argv.clone();
    for (int i = 0; i < copy.length; i++) {
      if (copy[i].equals("--out") && i + 1 < copy.length) {
        copy[i + 1] = dir.toString();
      } else if (copy[i].startsWith("--out=")) {
        copy[i] = "--out=" + dir;
      }
    }
    return copy;
  }
}
