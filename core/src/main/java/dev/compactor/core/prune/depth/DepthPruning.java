package dev.compactor.core.prune.depth;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Depth pruning in one call, as the CLI and the pruning stage run it: scores the layers on the
 * calibration windows ({@link DepthScorer}), picks the layers {@code method} removes and writes the
 * shallower model ({@link DepthPruner}).
 */
public final class DepthPruning {

  /** Windows per layer pass. */
  public static final int BATCH = 8;

  /**
   * Block lengths the angular curve covers when only scores are asked for ({@code drop = 0}): every
   * block up to this many layers (at most L-1); each costs one more held hidden state.
   */
  public static final int SCORES_ONLY_MAX_BLOCK = 8;

  private DepthPruning() {}

  /**
   * What was measured and removed.
   *
   * @param removed old indices of the removed layers, ascending (empty for scores only)
   */
  public record Result(
      DepthScores scores, DepthMethod method, int[] removed, int layersBefore, long tokens) {

    public int layersAfter() {
      return layersBefore - removed.length;
    }

    /** Scores, method, removed layers and token count as a JSON object. */
    public ObjectNode toJson() {
      ObjectNode o = scores.toJson();
      o.put("method", method.key());
      o.put("calibration_tokens", tokens);
      o.put("layers_before", layersBefore);
      o.put("layers_after", layersAfter());
      ArrayNode r = o.putArray("removed_layers");
      for (int i : removed) {
        r.add(i);
      }
      return o;
    }
  }

  /** Scores only: block influence of every layer and the angular curve for n = 1..maxBlock. */
  public static DepthScores score(
      Path model,
      List<int[]> windows,
      int maxBlock,
      TokenPositions positions,
      DepthScorer.Progress progress)
      throws IOException {
    ModelConfig c = ModelConfig.read(model);
    try (TensorSource src = ModelDirectory.open(model).weights()) {
      return new DepthScorer(maxBlock, positions, BATCH).score(c, src, windows, progress);
    }
  }

  /**
   * Scores {@code inputDir} on {@code windows}, removes {@code drop} layers chosen by {@code
   * method} and writes the result to {@code outputDir}. The model is checked (family, {@code drop <
   * L}) before any calibration pass runs.
   */
  public static Result run(
      Path inputDir,
      Path outputDir,
      DepthMethod method,
      int drop,
      List<int[]> windows,
      TokenPositions positions,
      DepthScorer.Progress progress,
      Map<String, String> extraMetadata)
      throws IOException {
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    DepthPruner.requireSupported(c, model.configJson());
    if (drop < 1 || drop >= c.numLayers()) {
      throw new IllegalArgumentException(
          "can drop 1.." + (c.numLayers() - 1) + " of " + c.numLayers() + " layers, asked " + drop);
    }
    DepthScores scores = score(inputDir, windows, drop, positions, progress);
    int[] removed = scores.layersToRemove(method, drop);
    Map<String, String> metadata = new LinkedHashMap<>(extraMetadata);
    metadata.put("compactor.prune.method", "depth");
    metadata.put("compactor.prune.granularity", "layer");
    metadata.put("compactor.prune.depth.method", method.key());
    metadata.put("compactor.prune.depth.positions", positions.key());
    DepthPruner.prune(inputDir, outputDir, removed, metadata);
    long tokens = (long) windows.size() * windows.get(0).length;
    return new Result(scores, method, removed, c.numLayers(), tokens);
  }
}
