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

  /**
   * The mask of an N:M pattern: in every group of {@code m} consecutive columns of each row the
   * {@code m - n} lowest scores are pruned (ties towards the lower index), so every group keeps at
   * most {@code n} weights. Wanda's N:M is this with |W| * ||X|| scores, as in its paper.
   *
   * @throws IllegalArgumentException when {@code cols} is not a multiple of {@code m}
   */
  public static BitSet selectNm(float[] scores, int rows, int cols, NmPattern pattern) {
    if ((long) rows * cols != scores.length) {
      throw new IllegalArgumentException(
          "scores hold " + scores.length + " values, expected rows*cols = " + (long) rows * cols);
    }
    int m = pattern.m();
    requireMultiple(cols, pattern);
    BitSet pruned = new BitSet(scores.length);
    float[] scratch = new float[m];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c += m) {
        selectGroup(scores, r * cols + c, m, pattern.pruned(), scratch, pruned);
      }
    }
    return pruned;
  }

  /** Throws unless an N:M pattern tiles {@code cols} inputs. */
  static void requireMultiple(int cols, NmPattern pattern) {
    if (cols % pattern.m() != 0) {
      throw new IllegalArgumentException(
          "not supported: pattern "
              + pattern
              + " on a linear with "
              + cols
              + " inputs (not a multiple of "
              + pattern.m()
              + ")");
    }
  }

  /**
   * Sets {@code pruned[offset + i]} for the {@code k} lowest of {@code scores[offset, offset +
   * len)} with the same tie rule as {@link #select}: below the k-th smallest, then its ties in
   * index order. Scores are not checked (SparseGPT's saliencies are non-negative by construction).
   */
  static void lowest(double[] scores, int offset, int len, int k, boolean[] pruned) {
    if (k <= 0) {
      return;
    }
    double[] sorted = Arrays.copyOfRange(scores, offset, offset + len);
    Arrays.sort(sorted);
    double threshold = sorted[k - 1];
    int below = 0;
    for (int i = offset; i < offset + len; i++) {
      if (scores[i] < threshold) {
        pruned[i] = true;
        below++;
      }
    }
    int ties = k - below;
    for (int i = offset; i < offset + len && ties > 0; i++) {
      if (scores[i] == threshold) {
        pruned[i] = true;
        ties--;
      }
    }
  }
}
