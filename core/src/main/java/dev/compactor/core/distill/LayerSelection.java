package dev.compactor.core.distill;

import java.util.Arrays;

/**
 * Which decoder layers of the teacher a student keeps: either given explicitly or a count spread
 * evenly over the depth, always keeping the first layer (it shapes the embedding space every later
 * layer reads) and the last (it shapes what the head reads).
 */
public final class LayerSelection {

  private LayerSelection() {}

  /**
   * {@code keep} indices out of {@code total}, evenly spaced and including 0 and {@code total-1}
   * (only 0 when {@code keep} is 1): index i is {@code round(i * (total-1) / (keep-1))}.
   */
  public static int[] evenlySpaced(int total, int keep) {
    if (total < 1) {
      throw new IllegalArgumentException("the teacher must have layers, found " + total);
    }
    if (keep < 1 || keep > total) {
      throw new IllegalArgumentException(
          "a student keeps between 1 and " + total + " layers, asked for " + keep);
    }
    int[] idx = new int[keep];
    for (int i = 1; i < keep; i++) {
      idx[i] = (int) Math.round((double) i * (total - 1) / (keep - 1));
    }
    return idx;
  }

  /** Validates explicit indices: strictly increasing, within {@code [0, total)}, not empty. */
  public static int[] explicit(int total, int... indices) {
    if (indices.length == 0) {
      throw new IllegalArgumentException("a student keeps at least one layer, found none");
    }
    for (int i = 0; i < indices.length; i++) {
      if (indices[i] < 0 || indices[i] >= total) {
        throw new IllegalArgumentException(
            "layer index " + indices[i] + " is outside the teacher's 0.." + (total - 1));
      }
      if (i > 0 && indices[i] <= indices[i - 1]) {
        throw new IllegalArgumentException(
            "layer indices must be strictly increasing, found " + Arrays.toString(indices));
      }
    }
    return indices.clone();
  }
}
