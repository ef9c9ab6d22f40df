package dev.compactor.cli.moe;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.moe.ExpertStatistics;
import dev.compactor.core.moe.MoeTable;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor moe-table}: prunes a mixture-of-experts model's experts (by routing frequency
 * and by router-weighted output norm) and merges them (weight-cosine groups, frequency-weighted
 * averages) at several kept-expert counts, and prints how far each moved from the original on
 * held-out text next to its parameters and per-token cost. Statistics are collected on windows of
 * the bundled Europarl training split; the default evaluation text is the disjoint test split.
 */
public final class MoeTableCommand implements Command {

  private static final int DEFAULT_MAX_BYTES = 100_000;
  private static final int SAMPLES = 64;
  private static final int SEQ_LEN = 256;
  private static final long SEED = 0;

  @Override
  public String name() {
    return "moe-table";
  }

  @Override
  public String summary() {
    return "quality and cost of expert pruning and merging versus the original MoE model";
  }

  @Override
  public String usage() {
    return "--model DIR [--kept 6,4,2 (default: 3/4, 1/2, 1/4 of the experts)] [--text FILE]"
        + " [--max-bytes N] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("model", "kept", "text", "max-bytes"), Set.of("json"));
    Path model = args.requiredPath("model");
    ModelConfig config = ModelConfig.read(model);
    if (!config.moe()) {
      throw new UsageException(
          "--model: expected a mixture-of-experts model, found " + config.modelType());
    }
    int experts = config.numExperts();
    int[] kept = kept(args, experts);
    int seqLen = Math.min(SEQ_LEN, config.maxPositions());
    TableText.Inputs in = TableText.inputs(args, model, DEFAULT_MAX_BYTES, seqLen, SAMPLES, SEED);
    String textName = in.text().name();
    int[] tokens = in.tokens();
    List<int[]> samples = in.calibration();
    Path work = Files.createTempDirectory("compactor-moe-table");
    try {
      long t0 = System.nanoTime();
      MoeTable table = new MoeTable(model, work, tokens, samples, seqLen);
      List<MoeTable.Row> rows =
          table.run(
              kept, (phase, done, total) -> err.printf("%s: %d/%d rows%n", phase, done, total));
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (args.has("json")) {
        out.println(json(model, textName, tokens.length, seqLen, rows));
      } else {
        print(out, model, textName, tokens.length, seqLen, samples.size(), rows, seconds);
        printStatistics(out, table.statistics());
      }
    } finally {
      TableText.deleteRecursively(work);
    }
    return 0;
  }

  private static int[] kept(Args args, int experts) throws UsageException {
    if (!args.present("kept")) {
      return Arrays.stream(new int[] {3 * experts / 4, experts / 2, experts / 4})
          .filter(n -> n >= 1)
          .distinct()
          .toArray();
    }
    try {
      int[] k =
          Arrays.stream(args.required("kept").split(","))
              .map(String::trim)
              .mapToInt(Integer::parseInt)
              .toArray();
      for (int n : k) {
        if (n < 1 || n > experts) {
          throw new UsageException(
              "--kept: expected counts between 1 and " + experts + ", found " + n);
        }
      }
      return k;
    } catch (NumberFormatException e) {
      throw new UsageException(
          "--kept: expected comma-separated integers, found " + e.getMessage());
    }
  }

  private static void print(
      PrintStream out,
      Path model,
      String textName,
      int tokens,
      int seqLen,
      int samples,
      List<MoeTable.Row> rows,
      double seconds) {
    out.printf("model: %s (%s)%n", model, TableText.weightsHash(model));
    out.printf(
        "text: %s, %d tokens, windows of %d; expert statistics: %d windows of the Europarl"
            + " training split%n",
        textName, tokens, seqLen, samples);
    out.printf(
        Locale.ROOT,
        "%-28s %3s %10s %8s %10s %7s %11s %11s %11s%n",
        "model",
        "k",
        "ppl",
        "dPPL%",
        "KL",
        "top1%",
        "params",
        "active",
        "FLOPs/tok");
    for (MoeTable.Row r : rows) {
      out.printf(
          Locale.ROOT,
          "%-28s %3d %10.4f %+8.3f %10.6f %7.2f %,11d %,11d %,11d%n",
          r.name(),
          r.expertsPerToken(),
          r.result().modelPerplexity(),
          r.deltaPplPercent(),
          r.result().klDivergence(),
          100 * r.result().top1Agreement(),
          r.parameters(),
          r.activeParameters(),
          r.flopsPerToken());
    }
    out.printf(
        "k: experts per token (min(top-k, kept)). active: parameters one token passes through."
            + " FLOPs/tok: 2 x the active parameters that are multiplied (not the embedding"
            + " lookup), attention scores left out. %.0f s.%n",
        seconds);
  }

  private static void printStatistics(PrintStream out, ExpertStatistics s) {
    out.println("expert statistics on the calibration windows, per layer and expert:");
    for (int l = 0; l < s.layers(); l++) {
      StringBuilder freq = new StringBuilder();
      StringBuilder norm = new StringBuilder();
      for (int e = 0; e < s.experts(); e++) {
        freq.append(String.format(Locale.ROOT, " %6.3f", s.frequency(l, e)));
        norm.append(String.format(Locale.ROOT, " %6.3f", s.weightedOutputNorm(l, e)));
      }
      out.printf("layer %2d frequency     %s%n", l, freq);
      out.printf("layer %2d weighted_norm %s%n", l, norm);
    }
  }

  private static String json(
      Path model, String textName, int tokens, int seqLen, List<MoeTable.Row> rows) {
    ObjectNode root = TableText.jsonHeader(model, textName, tokens, seqLen);
    ArrayNode a = root.putArray("rows");
    for (MoeTable.Row r : rows) {
      a.addObject()
          .put("model", r.name())
          .put("keptExperts", r.keptExperts())
          .put("expertsPerToken", r.expertsPerToken())
          .put("perplexity", r.result().modelPerplexity())
          .put("deltaPplPercent", r.deltaPplPercent())
          .put("klDivergence", r.result().klDivergence())
          .put("top1Agreement", r.result().top1Agreement())
          .put("parameters", r.parameters())
          .put("activeParameters", r.activeParameters())
          .put("flopsPerToken", r.flopsPerToken());
    }
    return root.toString();
  }
}
