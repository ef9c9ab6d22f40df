package dev.compactor.cli;

import java.io.PrintStream;

/**
 * One subcommand of {@code compactor}. Register a new one with a single line in {@link
 * Commands#ALL}.
 */
public interface Command {

  /** The word that selects it, e.g. {@code eval}. */
  String name();

  /** One line for the command list. */
  String summary();

  /** Its option synopsis, printed on a usage error, e.g. {@code --model DIR [--json]}. */
  String usage();

  /**
   * Runs it. Results go to {@code out}; progress and diagnostics to {@code err}. Returns the exit
   * code (0 on success); a {@link UsageException} means exit code 2, any other exception 1.
   */
  int run(String[] args, PrintStream out, PrintStream err) throws Exception;
}
