package dev.compactor.core.moe;

import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Expert merging: each layer's experts are grouped into {@code n} groups and every group becomes
 * one expert.
 *
 * <p>Grouping ({@link #group}) is by weight similarity: the {@code n} most frequently routed
 * experts are the group centres (a tie to the lower index) and every other expert joins the centre
 * whose flattened, concatenated gate|up|down weights have the highest cosine similarity with its
 * own (as in MC-SMoE's dominant experts). Weights, not outputs on calibration tokens, are compared:
 * they need no extra forward and are what the average below mixes.
 *
 * <p>Merging: the new expert's gate, up and down weights are the routing-frequency-weighted
 * averages of its group's (uniform when no member was ever routed). Its router row is the same
 * frequency-weighted mean of the members' rows. The log-sum-exp-preserving alternative (a logit
 * whose exponential is the group's total probability mass) is not a linear function of the hidden
 * state unless the rows are equal, and even then needs a bias of {@code log |group|} that Mixtral's
 * bias-free router cannot hold; the mean row keeps the logit on the members' scale, so the top-k
 * renormalisation sees logits like those it was trained with, and it is exact when the members are
 * identical (merging duplicates gives back the model without them).
 */
public final class ExpertMerger {

  private ExpertMerger() {}

  /**
   * Groups experts into {@code n} groups: centres are the {@code n} most {@code frequency}; the
   * others join the centre with the highest {@code similarity[e][centre]}. Returns the groups in
   * ascending order of their centre, members ascending.
   */
  public static List<int[]> group(double[][] similarity, double[] frequency, int n) {
    int experts = frequency.length;
    int[] centres = ExpertPruner.keep(frequency, n);
    List<List<Integer>> groups = new ArrayList<>();
    boolean[] isCentre = new boolean[experts];
    for (int ctr : centres) {
      groups.add(new ArrayList<>(List.of(ctr)));
      isCentre[ctr] = true;
    }
    for (int e = 0; e < experts; e++) {
      if (isCentre[e]) {
        continue;
      }
      int best = 0;
      for (int g = 1; g < centres.length; g++) {
        if (similarity[e][centres[g]] > similarity[e][centres[best]]) {
          best = g;
        }
      }
      groups.get(best).add(e);
    }
    List<int[]> out = new ArrayList<>();
    for (List<Integer> g : groups) {
      out.add(g.stream().mapToInt(Integer::intValue).sorted().toArray());
    }
    return out;
  }

  /**
   * Cosine similarity of every pair of {@code layer}'s experts, over their flattened concatenated
   * gate|up|down weights. One projection of all the layer's experts is in memory at a time.
   */
  public static double[][] weightSimilarity(TensorSource src, ModelConfig c, int layer)
      throws IOException {
    int experts = c.numExperts();
    double[][] dot = new double[experts][experts];
    String prefix = Layout.layerPrefix(c, "", layer);
    for (Layout.ExpertProj p : Layout.ExpertProj.values()) {
      float[][] w = new float[experts][];
      for (int e = 0; e < experts; e++) {
        w[e] = src.readFloats(prefix + Layout.expert(c, e, p) + ".weight");
      }
      for (int a = 0; a < experts; a++) {
        for (int b = a; b < experts; b++) {
          double s = 0;
          float[] x = w[a];
          float[] y = w[b];
          for (int i = 0; i < x.length; i++) {
            s += (double) x[i] * y[i];
          }
          dot[a][b] += s;
          dot[b][a] = dot[a][b];
        }
      }
    }
    double[][] cos = new double[experts][experts];
    for (int a = 0; a < experts; a++) {
      for (int b = 0; b < experts; b++) {
        double norm = Math.sqrt(dot[a][a] * dot[b][b]);
        cos[a][b] = norm == 0 ? 0 : dot[a][b] / norm;
      }
    }
    return cos;
  }

  /**
   * Groups every layer of {@code inputDir} by {@link #weightSimilarity} and {@code stats}'
   * frequencies, merges, writes the result to {@code outputDir}; returns the groups per layer (null
   * for a dense layer).
   */
  public static List<List<int[]>> merge(
      Path inputDir, Path outputDir, ExpertStatistics stats, int n) throws IOException {
    return merge(inputDir, outputDir, stats, n, Map.of());
  }

  /**
   * As {@link #merge(Path, Path, ExpertStatistics, int)}, with {@code extraMetadata} (e.g. the
   * pruning stage's provenance) added to the checkpoint's metadata.
   */
  public static List<List<int[]>> merge(
      Path inputDir,
      Path outputDir,
      ExpertStatistics stats,
      int n,
      Map<String, String> extraMetadata)
      throws IOException {
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig c = ExpertRewrite.requireExpertModel(model);
    ExpertPruner.checkStats(c, stats);
    List<List<int[]>> groups = new ArrayList<>();
    try (TensorSource src = model.weights()) {
      for (int layer = 0; layer < c.numLayers(); layer++) {
        groups.add(
            c.sparseLayer(layer)
                ? group(weightSimilarity(src, c, layer), stats.frequencies(layer), n)
                : null);
      }
    }
    merge(inputDir, outputDir, groups, stats, extraMetadata);
    return groups;
  }

  /** Merges the given {@code groups} (per layer, old expert indices) of {@code inputDir}. */
  public static void merge(
      Path inputDir, Path outputDir, List<List<int[]>> groups, ExpertStatistics stats)
      throws IOException {
    merge(inputDir, outputDir, groups, stats, Map.of());
  }

  private static void merge(
      Path inputDir,
      Path outputDir,
      List<List<int[]>> groups,
      ExpertStatistics stats,
      Map<String, String> extraMetadata)
      throws IOException {
    List<List<ExpertRewrite.Group>> plan = new ArrayList<>();
    int kept = 0;
    for (int layer = 0; layer < groups.size(); layer++) {
      if (groups.get(layer) == null) {
        plan.add(null);
        continue;
      }
      kept = groups.get(layer).size();
      double[] f = stats.frequencies(layer);
      List<ExpertRewrite.Group> layerPlan = new ArrayList<>();
      for (int[] members : groups.get(layer)) {
        layerPlan.add(new ExpertRewrite.Group(members, weights(members, f)));
      }
      plan.add(layerPlan);
    }
    Map<String, String> metadata = new LinkedHashMap<>(extraMetadata);
    metadata.put("compactor.moe.merge.similarity", "weight_cosine");
    metadata.put("compactor.moe.merge.kept_experts", Integer.toString(kept));
    ExpertRewrite.write(inputDir, outputDir, plan, metadata);
  }

  /** Frequency-normalised weights of a group; uniform when none of them was routed. */
  static double[] weights(int[] members, double[] frequency) {
    double sum = 0;
    for (int e : members) {
      sum += frequency[e];
    }
    double[] w = new double[members.length];
    for (int j = 0; j < members.length; j++) {
      w[j] = sum > 0 ? frequency[members[j]] / sum : 1.0 / members.length;
    }
    if (members.length == 1) {
      w[0] = 1;
    }
    return w;
  }
}
