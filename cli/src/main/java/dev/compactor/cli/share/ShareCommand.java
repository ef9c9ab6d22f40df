package dev.compactor.cli.share;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.HeldOutQuality;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.share.BasisSharing;
import dev.compactor.core.share.CrossLayerSharing;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor share}: cross-layer weight sharing of a model's decoder linears ({@link
 * CrossLayerSharing}): {@code --form matrix} (adjacent layers use one mean matrix, groups chosen by
 * weight similarity) or {@code --form basis} (Basis Sharing: one low-rank basis per group of {@code
 * --group} layers, a coefficient matrix per layer), keeping {@code --ratio} of the decoder-linear
 * parameters. The output stores each shared tensor once ({@code compactor_shared} in config.json),
 * which this project's loader resolves; {@code --merge} writes a shared model back without
 * references for other runtimes. Scores the output against the input on held-out text (perplexity,
 * KL divergence); the report goes to stdout (JSON with {@code --json}).
 */
public final class ShareCommand implements Command {

  static final int DEFAULT_EVAL_BYTES = 50_000;

  @Override
  public String name() {
    return "share";
  }

  @Override
  public String summary() {
    return "cross-layer weight sharing (shared matrix or shared low-rank basis), stored once";
  }

  @Override
  public String usage() {
    return "--model DIR (--ratio F [--form matrix|basis (default basis)] [--group N]"
        + " [--side out|in] [--choose] | --merge) [--text FILE] [--max-bytes N] [--no-eval] --out DIR"
        + " [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of("model", "ratio", "form", "group", "side", "text", "max-bytes", "out"),
            Set.of("merge", "json", "no-eval", "choose"));
    Path model = args.requiredPath("model");
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    Path outDir = args.requiredPath("out");
    if (Files.exists(outDir)) {
      try (var entries = Files.list(outDir)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + outDir + " must be absent or empty");
        }
      }
    }
    boolean merge = args.has("merge");
    if (merge == args.present("ratio")) {
      throw new UsageException("give exactly one of --ratio F (share) and --merge (unshare)");
    }
    long start = System.nanoTime();
    ObjectNode summary;
    if (merge) {
      int removed = CrossLayerSharing.merge(model, outDir);
      summary = new ObjectMapper().createObjectNode();
      summary.put("merged_references", removed);
      summary.put("parameters_after", CrossLayerSharing.storedParameters(outDir));
      if (!args.has("json")) {
        out.printf(
            Locale.ROOT,
            "wrote %s without references (%d removed), %,d parameters stored%n",
            outDir,
            removed,
            CrossLayerSharing.storedParameters(outDir));
      }
    } else {
      CrossLayerSharing.Spec spec;
      ModelConfig config = ModelConfig.read(model);
      try {
        CrossLayerSharing.Form form = CrossLayerSharing.Form.parse(args.string("form", "basis"));
        spec =
            new CrossLayerSharing.Spec(
                form,
                args.number("ratio", 0),
                args.integer(
                    "group", form == CrossLayerSharing.Form.BASIS ? 2 : config.numLayers()),
                BasisSharing.Side.parse(args.string("side", "out")),
                args.has("choose"));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--" + e.getMessage());
      }
      err.printf(
          Locale.ROOT,
          "sharing %s: %s, ratio %.3f, group %d%n",
          model,
          spec.form().key(),
          spec.ratio(),
          spec.group());
      CrossLayerSharing.Report report;
      try {
        report = CrossLayerSharing.run(spec, model, outDir);
      } catch (IllegalArgumentException e) {
        throw new UsageException(e.getMessage());
      }
      summary = report.toJson();
      if (!args.has("json")) {
        out.printf("wrote %s (%s)%n", outDir, spec.form().key());
        for (CrossLayerSharing.Group g : report.groups()) {
          out.printf(
              Locale.ROOT,
              "%-20s layers %d-%d%s relative error %.4f%n",
              g.linear(),
              g.from(),
              g.to() - 1,
              g.rank() > 0 ? " rank " + g.rank() : "",
              g.relativeError());
        }
        out.printf(
            Locale.ROOT,
            "parameters %,d -> %,d (%.1f%%) stored; decoder linears %,d -> %,d (%.1f%%);"
                + " weight bytes %,d -> %,d; %d references%n",
            report.parametersBefore(),
            report.parametersAfter(),
            100.0 * report.parametersAfter() / report.parametersBefore(),
            report.linearParametersBefore(),
            report.linearParametersAfter(),
            100.0 * report.linearParametersAfter() / report.linearParametersBefore(),
            report.bytesBefore(),
            report.bytesAfter(),
            report.references());
      }
    }
    summary.put("out", outDir.toAbsolutePath().toString());
    if (!args.has("no-eval")) {
      TableText held = TableText.fromArgs(args, args.integer("max-bytes", DEFAULT_EVAL_BYTES));
      HeldOutQuality quality = HeldOutQuality.measure(model, outDir, held, err);
      quality.putJson(summary);
      if (!args.has("json")) {
        quality.print(out);
      }
    }
    summary.put("seconds", (System.nanoTime() - start) / 1e9);
    if (args.has("json")) {
      out.println(new ObjectMapper().writeValueAsString(summary));
    }
    return 0;
  }
}
