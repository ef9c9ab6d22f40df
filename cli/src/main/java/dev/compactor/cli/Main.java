package dev.compactor.cli;

import dev.compactor.core.engine.TorchThreads;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;

/**
 * Entry point of the {@code compactor} command: picks the subcommand from the first word and maps
 * the outcome to an exit code (0 ok, 2 usage error, 1 failure with a one-line message).
 */
public final class Main {

  private Main() {}

  public static void main(String[] args) {
    int code = run(args, System.out, System.err);
    System.out.flush();
    System.exit(code);
  }

  /** Runs one command line in-process and returns its exit code. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    Map<String, Command> commands = Commands.byName();
    if (args.length == 2 && args[0].equals("help") && commands.containsKey(args[1])) {
      printHelp(commands.get(args[1]), out);
      return 0;
    }
    if (args.length == 0 || args[0].equals("help") || args[0].equals("--help")) {
      printCommands(commands, args.length == 0 ? err : out);
      return args.length == 0 ? 2 : 0;
    }
    Command command = commands.get(args[0]);
    if (command == null) {
      err.println("error: unknown command '" + args[0] + "'");
      printCommands(commands, err);
      return 2;
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    if (asksForHelp(rest)) {
      printHelp(command, out);
      return 0;
    }
    try {
      TorchThreads.configure();
      return command.run(rest, out, err);
    } catch (UsageException e) {
      err.println("error: " + e.getMessage());
      err.println("usage: compactor " + command.name() + " " + command.usage());
      return 2;
    } catch (Exception | Error e) {
      String message = e.getMessage() == null ? e.getClass().getName() : e.getMessage();
      err.println("error: " + message.replace('\n', ' '));
      return 1;
    }
  }

  /** {@code --help} or {@code -h} anywhere after the command word. */
  private static boolean asksForHelp(String[] rest) {
    return Arrays.stream(rest).anyMatch(a -> a.equals("--help") || a.equals("-h"));
  }

  private static void printHelp(Command c, PrintStream s) {
    s.println("usage: compactor " + c.name() + " " + c.usage());
    s.println();
    s.println(c.summary());
  }

  private static void printCommands(Map<String, Command> commands, PrintStream s) {
    s.println("usage: compactor <command> [options]");
    s.println("commands (compactor <command> --help for its options):");
    for (Command c : commands.values()) {
      s.printf("  %-12s %s%n", c.name(), c.summary());
    }
  }
}
