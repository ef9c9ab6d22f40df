package dev.compactor.cli.prune;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.prune.structured.StructuredSpec;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import dev.compactor.core.prune.structured.StructuredSpec.Widths;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/**
 * A validated structured {@code compactor prune} command line: {@code --heads F} and/or {@code
 * --channels F} (fractions of the KV groups or query heads, and of the MLP channels, removed from
 * every layer), {@code --importance activation|fluctuation} (default activation), {@code
 * --head-mode kv_groups|query_heads} (default kv_groups), {@code --widths uniform|per_layer}
 * (default uniform; {@code per_layer} spreads the removed MLP channels over the layers by their
 * standardised scores, heads stay uniform), {@code --compensate} (FLAP's bias compensation), and
 * the calibration options of the weight-pruning path. Weight-pruning options ({@code --method},
 * {@code --sparsity}, {@code --pattern}) are refused with it.
 */
record StructuredPruneRequest(
    Path model,
    StructuredSpec spec,
    Path calibration,
    int samples,
    int seqLen,
    Path out,
    boolean json) {

  static final Set<String> OPTIONS =
      Set.of(
          "model",
          "heads",
          "channels",
          "importance",
          "head-mode",
          "widths",
          "calibration",
          "samples",
          "seq-len",
          "out");
  static final Set<String> FLAGS = Set.of("compensate", "json");

  /** Whether the command line asks for structured pruning (names --heads or --channels). */
  static boolean asked(String[] argv) {
    for (String a : argv) {
      if (a.equals("--heads")
          || a.equals("--channels")
          || a.startsWith("--heads=")
          || a.startsWith("--channels=")) {
        return true;
      }
    }
    return false;
  }

  static StructuredPruneRequest parse(String[] argv) throws UsageException, IOException {
    for (String a : argv) {
      for (String weightOnly : new String[] {"--method", "--sparsity", "--pattern"}) {
        if (a.equals(weightOnly) || a.startsWith(weightOnly + "=")) {
          throw new UsageException(
              weightOnly
                  + ": structured pruning (--heads/--channels) removes whole heads and channels;"
                  + " it takes no "
                  + weightOnly
                  + " (that is weight pruning)");
        }
      }
    }
    Args args = Args.parse(argv, OPTIONS, FLAGS);
    Path model = args.requiredPath("model");
    double heads = args.number("heads", 0);
    double channels = args.number("channels", 0);
    StructuredSpec spec;
    try {
      spec =
          new StructuredSpec(
              heads,
              channels,
              Importance.parse(args.string("importance", "activation")),
              HeadMode.parse(args.string("head-mode", "kv_groups")),
              args.has("compensate"),
              Widths.parse(args.string("widths", "uniform")));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    PruneArgs.Calibration cal = PruneArgs.calibration(args);
    Path calibration = cal.file();
    int samples = cal.samples();
    int seqLen = cal.seqLen();
    Path out = PruneArgs.emptyOut(args);
    PruneArgs.requireModelDir(model);
    return new StructuredPruneRequest(
        model, spec, calibration, samples, seqLen, out, args.has("json"));
  }
}
