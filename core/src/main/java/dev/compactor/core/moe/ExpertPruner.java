package dev.compactor.core.moe;

import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Expert pruning: keeps the {@code n} experts of every layer with the highest calibration score
 * ({@link ExpertScore}) and writes a smaller checkpoint. Kept experts keep their relative order and
 * are renumbered {@code 0..n-1}; the router rows of the dropped experts are removed, so the router
 * softmax normalises over the kept experts only, and {@code num_experts_per_tok} becomes {@code
 * min(k, n)}. Because Mixtral renormalises the top-k probabilities to sum 1 (as Qwen MoE does with
 * {@code norm_topk_prob: true}), a token whose top-k held only kept experts gets exactly the MoE
 * output it had before; only tokens that were routed to a dropped expert change (they take the next
 * best kept one instead). With {@code norm_topk_prob: false} (Qwen's default) the kept experts'
 * weights are their softmax probabilities over the kept experts, so every token's weights grow by
 * the probability mass the dropped experts had. A Qwen MoE model's dense layers and shared experts
 * are kept as they are.
 */
public final class ExpertPruner {

  private ExpertPruner() {}

  /**
   * The indices of the {@code n} highest {@code scores}, ascending; a tie goes to the lower index.
   */
  public static int[] keep(double[] scores, int n) {
    if (n < 1 || n > scores.length) {
      throw new IllegalArgumentException(
          "expected to keep between 1 and " + scores.length + " experts, got " + n);
    }
    Integer[] order = new Integer[scores.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(
        order, (a, b) -> scores[a] != scores[b] ? Double.compare(scores[b], scores[a]) : a - b);
    int[] kept = new int[n];
    for (int i = 0; i < n; i++) {
      kept[i] = order[i];
    }
    Arrays.sort(kept);
    return kept;
  }

  /**
   * Prunes {@code inputDir} to {@code n} experts per layer by {@code method} over {@code stats} and
   * writes the result to {@code outputDir}; returns the kept old expert indices per layer (empty
   * for a dense layer).
   */
  public static List<int[]> prune(
      Path inputDir, Path outputDir, ExpertStatistics stats, ExpertScore method, int n)
      throws IOException {
    return prune(inputDir, outputDir, stats, method, n, Map.of());
  }

  /**
   * As {@link #prune(Path, Path, ExpertStatistics, ExpertScore, int)}, with {@code extraMetadata}
   * (e.g. the pruning stage's provenance) added to the checkpoint's metadata.
   */
  public static List<int[]> prune(
      Path inputDir,
      Path outputDir,
      ExpertStatistics stats,
      ExpertScore method,
      int n,
      Map<String, String> extraMetadata)
      throws IOException {
    ModelConfig c = ExpertRewrite.requireExpertModel(ModelDirectory.open(inputDir));
    checkStats(c, stats);
    List<int[]> kept = new ArrayList<>();
    List<List<ExpertRewrite.Group>> plan = new ArrayList<>();
    for (int layer = 0; layer < c.numLayers(); layer++) {
      if (!c.sparseLayer(layer)) {
        kept.add(new int[0]);
        plan.add(null);
        continue;
      }
      int[] k = keep(stats.scores(layer, method), n);
      kept.add(k);
      List<ExpertRewrite.Group> groups = new ArrayList<>();
      for (int e : k) {
        groups.add(ExpertRewrite.Group.of(e));
      }
      plan.add(groups);
    }
    Map<String, String> metadata = new LinkedHashMap<>(extraMetadata);
    metadata.put("compactor.moe.prune.method", method.id());
    metadata.put("compactor.moe.prune.kept_experts", Integer.toString(n));
    ExpertRewrite.write(inputDir, outputDir, plan, metadata);
    return kept;
  }

  static void checkStats(ModelConfig c, ExpertStatistics stats) {
    if (stats.layers() != c.numLayers() || stats.experts() != c.numExperts()) {
      throw new IllegalArgumentException(
          "statistics are for "
              + stats.layers()
              + " layers of "
              + stats.experts()
              + " experts, the model has "
              + c.numLayers()
              + " of "
              + c.numExperts());
    }
  }
}
