package dev.compactor.core.prune.depth;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;

/**
 * Per-layer importance of a decoder stack measured on calibration text. Hidden state {@code h_i} is
 * the input of layer {@code i} ({@code h_0} the token embeddings, {@code h_L} the last layer's
 * output before the final norm).
 *
 * @param layers decoder layers L
 * @param maxBlock the longest block n the angular curve covers
 * @param positions which window positions were averaged
 * @param vectors hidden-state vectors averaged per comparison (windows x positions)
 * @param blockInfluence {@code BI_i = 1 - mean cos(h_i, h_{i+1})}, one per layer
 * @param angular {@code angular[n-1][l] = mean arccos(cos(h_l, h_{l+n})) / pi} for {@code l = 0 ..
 *     L-n}
 */
public record DepthScores(
    int layers,
    int maxBlock,
    TokenPositions positions,
    long vectors,
    double[] blockInfluence,
    double[][] angular) {

  public DepthScores {
    if (blockInfluence.length != layers || angular.length != maxBlock) {
      throw new IllegalArgumentException(
          "scores of " + blockInfluence.length + " layers / " + angular.length + " block lengths");
    }
    for (int n = 1; n <= maxBlock; n++) {
      if (angular[n - 1].length != layers - n + 1) {
        throw new IllegalArgumentException(
            "angular distances of blocks of " + n + ": expected " + (layers - n + 1));
      }
    }
  }

  /** {@code d(start, n)}, the angular distance across layers {@code start .. start+n-1}. */
  public double angular(int start, int n) {
    if (n < 1 || n > maxBlock) {
      throw new IllegalArgumentException(
          "block length " + n + " outside the measured 1.." + maxBlock);
    }
    return angular[n - 1][start];
  }

  /** The first layer of the block of {@code n} layers with the smallest angular distance. */
  public int bestBlock(int n) {
    checkCount(n);
    if (n > maxBlock) {
      throw new IllegalArgumentException(
          "angular distances were measured for blocks up to " + maxBlock + ", asked for " + n);
    }
    double[] d = angular[n - 1];
    int best = 0;
    for (int l = 1; l < d.length; l++) {
      if (d[l] < d[best]) {
        best = l;
      }
    }
    return best;
  }

  /** The {@code n} layers of lowest block influence, ascending; a tie goes to the lower index. */
  public int[] lowestInfluence(int n) {
    checkCount(n);
    Integer[] order = new Integer[layers];
    for (int i = 0; i < layers; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Double.compare(blockInfluence[a], blockInfluence[b]));
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = order[i];
    }
    Arrays.sort(out);
    return out;
  }

  /** The layers {@code method} removes to drop {@code n}, ascending. */
  public int[] layersToRemove(DepthMethod method, int n) {
    return switch (method) {
      case BLOCK_INFLUENCE -> lowestInfluence(n);
      case ANGULAR -> {
        int start = bestBlock(n);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
          out[i] = start + i;
        }
        yield out;
      }
    };
  }

  /**
   * {@code {"layers", "positions", "vectors", "block_influence": [...], "angular": [{"n", "start":
   * [...distances]}...]}}.
   */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("layers", layers);
    o.put("positions", positions.key());
    o.put("vectors", vectors);
    ArrayNode bi = o.putArray("block_influence");
    for (double v : blockInfluence) {
      bi.add(v);
    }
    ArrayNode curve = o.putArray("angular");
    for (int n = 1; n <= maxBlock; n++) {
      ObjectNode row = curve.addObject();
      row.put("n", n);
      if (n < layers) {
        row.put("best_start", bestBlock(n));
      }
      ArrayNode d = row.putArray("distance");
      for (double v : angular[n - 1]) {
        d.add(v);
      }
    }
    return o;
  }

  private void checkCount(int n) {
    if (n < 1 || n >= layers) {
      throw new IllegalArgumentException(
          "can remove 1.." + (layers - 1) + " of " + layers + " layers, asked for " + n);
    }
  }
}
