package dev.compactor.cli.prune;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.recipe.PruneParams;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The recovery options every {@code prune} command line takes ({@code --recover-steps N
 * [--recover-lr F] [--recover-batch N] [--recover-windows N] [--recover-seq-len N] [--rounds R]}),
 * split off before the pruning options are parsed: the pruning runs as without them, and the
 * recovery follows (the recipe's {@code prune.recovery} block, with the same defaults).
 */
final class RecoveryArgs {

  static final Set<String> OPTIONS =
      Set.of(
          "recover-steps",
          "recover-lr",
          "recover-batch",
          "recover-windows",
          "recover-seq-len",
          "rounds");

  static final String USAGE =
      "[--recover-steps N [--recover-lr F] [--recover-batch N] [--recover-windows N]"
          + " [--recover-seq-len N] [--rounds R]]";

  /**
   * The command line without its recovery options, and the recovery they ask for (null for none).
   */
  record Split(String[] pruneArgv, PruneParams.Recovery recovery) {}

  private RecoveryArgs() {}

  static Split split(String[] argv) throws UsageException {
    List<String> rest = new ArrayList<>();
    List<String> mine = new ArrayList<>();
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      String name = a.startsWith("--") ? a.substring(2).split("=", 2)[0] : "";
      if (!OPTIONS.contains(name)) {
        rest.add(a);
        continue;
      }
      mine.add(a);
      if (!a.contains("=") && i + 1 < argv.length) {
        mine.add(argv[++i]);
      }
    }
    if (mine.isEmpty()) {
      return new Split(argv, null);
    }
    Args args = Args.parse(mine.toArray(String[]::new), OPTIONS, new HashSet<>());
    if (!args.present("recover-steps")) {
      throw new UsageException("recovery options need --recover-steps N");
    }
    int steps = args.integer("recover-steps", 0);
    try {
      PruneParams.Recovery d = PruneParams.Recovery.steps(steps);
      return new Split(
          rest.toArray(String[]::new),
          new PruneParams.Recovery(
              d.steps(),
              args.number("recover-lr", d.lr()),
              args.integer("recover-batch", d.batch()),
              args.integer("rounds", d.rounds()),
              args.integer("recover-windows", d.windows()),
              args.integer("recover-seq-len", d.seqLen())));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
  }
}
