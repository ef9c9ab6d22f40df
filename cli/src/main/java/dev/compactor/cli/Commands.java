package dev.compactor.cli;

import dev.compactor.cli.distill.DistillCommand;
import dev.compactor.cli.factorize.FactorizeCommand;
import dev.compactor.cli.lora.LoraCommand;
import dev.compactor.cli.moe.MoeTableCommand;
import dev.compactor.cli.moe.MoefyCommand;
import dev.compactor.cli.pipeline.CancelCommand;
import dev.compactor.cli.pipeline.DemoCommand;
import dev.compactor.cli.pipeline.StatusCommand;
import dev.compactor.cli.pipeline.SubmitCommand;
import dev.compactor.cli.pipeline.SweepCommand;
import dev.compactor.cli.pipeline.UpCommand;
import dev.compactor.cli.pipeline.WatchCommand;
import dev.compactor.cli.prune.PruneCommand;
import dev.compactor.cli.prune.PruneTableCommand;
import dev.compactor.cli.quant.CodebookTableCommand;
import dev.compactor.cli.quant.QatCommand;
import dev.compactor.cli.quant.QualityTableCommand;
import dev.compactor.cli.quant.QuantizeCommand;
import dev.compactor.cli.share.ShareCommand;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The registry of subcommands, in the order {@code compactor help} lists them. */
public final class Commands {

  /** Every subcommand; add a new one here (one line). */
  static final List<Command> ALL =
      List.of(
          new TinyModelCommand(),
          new EvalCommand(),
          new TasksCommand(),
          new CascadeCommand(),
          new GenerateCommand(),
          new BenchDecodeCommand(),
          new DemoCommand(),
          new UpCommand(),
          new SubmitCommand(),
          new StatusCommand(),
          new WatchCommand(),
          new CancelCommand(),
          new SweepCommand(),
          new PruneCommand(),
          new QuantizeCommand(),
          new QualityTableCommand(),
          new dev.compactor.cli.quant.MixedPrecisionCommand(),
          new QatCommand(),
          new CodebookTableCommand(),
          new PruneTableCommand(),
          new MoefyCommand(),
          new MoeTableCommand(),
          new FactorizeCommand(),
          new ShareCommand(),
          new LoraCommand(),
          new DistillCommand(),
          new CleanCommand(),
          new RecoveryTableCommand());

  private Commands() {}

  /** The registry keyed by command word. */
  public static Map<String, Command> byName() {
    Map<String, Command> map = new LinkedHashMap<>();
    for (Command c : ALL) {
      if (map.put(c.name(), c) != null) {
        throw new IllegalStateException("two commands are named " + c.name());
      }
    }
    return map;
  }
}
