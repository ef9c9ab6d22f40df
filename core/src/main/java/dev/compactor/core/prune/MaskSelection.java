package dev.compactor.core.prune;

import dev.compactor.core.prune.PruningSpec.Granularity;
import java.util.Arrays;
import java.util.BitSet;

/**
 * Chooses which weights to zero from their importance scores: within each comparison group the
 * {@code round(sparsity * groupSize)} lowest scores are pruned, ties broken towards the lower index
 * so that the mask is deterministic and the achieved sparsity exact.
 */
public final class MaskSelection {

  private MaskSelection() {}

  /**
   * Number of elements pruned from a group of {@code groupSize}: the count closest to the target
   * (half rounds up), so {@code 0.5} of an even group is exactly half.
   */
  public static long prunedCount(long groupSize, double sparsity) {
    return Math.round(sparsity * groupSize);
  }

  /**
   * The mask of pruned elements of a row-major {@code [rows, cols]} score matrix. Scores must be
   * finite and non-negative (they are magnitudes).
   */
  public static BitSet select(
      float[] scores, int rows, int cols, double sparsity, Granularity granularity) {
    if ((long) rows * cols != scores.length) {
      throw new IllegalArgumentException(
          "scores hold " + scores.length + " values, expected rows*cols = " + (long) rows * cols);
    }
    BitSet pruned = new BitSet(scores.length);
    if (granularity == Granularity.PER_OUTPUT_ROW) {
      float[] scratch = new float[cols];
      for (int r = 0; r < rows; r++) {
        selectGroup(scores, r * cols, cols, (int) prunedCount(cols, sparsity), scratch, pruned);
      }
    } else {
      selectGroup(
          scores,
          0,
          scores.length,
          (int) prunedCount(scores.length, sparsity),
          new float[scores.length],
          pruned);
    }
    return pruned;
  }

  /**
   * Marks the {@code k} lowest scores of {@code scores[offset, offset+len)}: everything strictly
   * below the k-th smallest value, then that value's ties in index order until k are marked.
   */
  private static void selectGroup(
      float[] scores, int offset, int len, int k, float[] scratch, BitSet pruned) {
    if (k <= 0) {
      return;
    }
    System.arraycopy(scores, offset, scratch, 0, len);
    for (int i = 0; i < len; i++) {
      float s = scratch[i];
      if (!(s >= 0f) || Float.isInfinite(s)) {
        throw new IllegalArgumentException(
            "importance scores must be finite and >= 0, found " + s + " at " + (offset + i));
      }
    }
    Arrays.sort(scratch, 0, len);
    float threshold = scratch[k - 1];
    int below = 0;
    for (int i = 0; i < len; i++) {
      if (scores[offset + i] < threshold) {
        pruned.set(offset + i);
        below++;
      }
    }
    int ties = k - below;
    for (int i = 0; i < len && ties > 0; i++) {
      if (scores[offset + i] == threshold) {
        pruned.set(offset + i);
        ties--;
      }
    }
  }
}
