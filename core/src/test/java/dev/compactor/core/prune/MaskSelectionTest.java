package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.prune.PruningSpec.Granularity;
import java.util.BitSet;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class MaskSelectionTest {

  @Test
  void smallMatrixPerRowExactMask() {
    float[] w = {
      0.1f, -0.5f, 0.3f, -0.2f, //
      -4f, 1f, 0.5f, 2f, //
      0f, 0f, 9f, -9f
    };
    BitSet m =
        MaskSelection.select(ImportanceScores.magnitude(w), 3, 4, 0.5, Granularity.PER_OUTPUT_ROW);
    // Row 0 drops 0.1 and -0.2; row 1 drops 1 and 0.5; row 2 drops its two zeros.
    assertEquals(bits(0, 3, 5, 6, 8, 9), m);
  }

  @Test
  void smallMatrixPerTensorExactMask() {
    float[] w = {3f, -1f, 2f, 0.5f, -6f, 0.25f};
    BitSet m =
        MaskSelection.select(ImportanceScores.magnitude(w), 2, 3, 0.5, Granularity.PER_TENSOR);
    assertEquals(bits(1, 3, 5), m);
  }

  @Test
  void tiesBreakTowardsLowerIndexSoSparsityIsExact() {
    float[] s = {1f, 1f, 1f, 1f, 1f, 1f};
    assertEquals(bits(0, 1), MaskSelection.select(s, 1, 6, 1.0 / 3, Granularity.PER_OUTPUT_ROW));
  }

  @Test
  void wandaScoresWeighMagnitudeByInputNorm() {
    float[] w = {1f, -2f, 3f, 4f, 5f, -6f};
    float[] n = {10f, 1f, 0.5f};
    assertArrayEquals(
        new float[] {10f, 2f, 1.5f, 40f, 5f, 3f}, ImportanceScores.wanda(w, 2, 3, n), 0f);
    assertThrows(
        IllegalArgumentException.class, () -> ImportanceScores.wanda(w, 2, 3, new float[2]));
  }

  @Test
  void matchesSortBasedReferenceOnRandomMatrices() {
    Random rnd = new Random(3);
    for (int trial = 0; trial < 30; trial++) {
      int rows = 1 + rnd.nextInt(9);
      int cols = 1 + rnd.nextInt(40);
      double sparsity = 0.05 + 0.9 * rnd.nextDouble();
      float[] s = new float[rows * cols];
      for (int i = 0; i < s.length; i++) {
        // Few distinct values so that ties are common.
        s[i] = rnd.nextInt(6) * 0.5f;
      }
      for (Granularity g : Granularity.values()) {
        BitSet actual = MaskSelection.select(s, rows, cols, sparsity, g);
        assertEquals(reference(s, rows, cols, sparsity, g), actual, "trial " + trial + " " + g);
        long group = g == Granularity.PER_TENSOR ? s.length : cols;
        long groups = g == Granularity.PER_TENSOR ? 1 : rows;
        assertEquals(groups * Math.round(sparsity * group), actual.cardinality());
      }
    }
  }

  @Test
  void rejectsNegativeOrNanScoresAndWrongSize() {
    assertThrows(
        IllegalArgumentException.class,
        () -> MaskSelection.select(new float[] {1f, -1f}, 1, 2, 0.5, Granularity.PER_OUTPUT_ROW));
    assertThrows(
        IllegalArgumentException.class,
        () -> MaskSelection.select(new float[] {1f, Float.NaN}, 1, 2, 0.5, Granularity.PER_TENSOR));
    assertThrows(
        IllegalArgumentException.class,
        () -> MaskSelection.select(new float[3], 2, 2, 0.5, Granularity.PER_TENSOR));
  }

  /** Stable sort of indices by score, then the first k of each group: a different algorithm. */
  private static BitSet reference(float[] s, int rows, int cols, double sp, Granularity g) {
    BitSet out = new BitSet();
    int groups = g == Granularity.PER_TENSOR ? 1 : rows;
    int size = g == Granularity.PER_TENSOR ? rows * cols : cols;
    for (int gi = 0; gi < groups; gi++) {
      int base = gi * size;
      int k = (int) Math.round(sp * size);
      IntStream.range(0, size)
          .boxed()
          .sorted(Comparator.comparingDouble((Integer i) -> s[base + i]).thenComparing(i -> i))
          .limit(k)
          .forEach(i -> out.set(base + i));
    }
    return out;
  }

  private static BitSet bits(int... idx) {
    BitSet b = new BitSet();
    for (int i : idx) {
      b.set(i);
    }
    return b;
  }

  @Test
  void nmKeepsTheNLargestOfEveryGroupOfM() {
    float[] scores = {4, 1, 3, 2, 0, 0, 5, 5, 9, 8, 7, 6, 1, 2, 2, 1};
    BitSet twoFour = MaskSelection.selectNm(scores, 2, 8, new NmPattern(2, 4));
    // row 0: {4,1,3,2} prunes 1,2; {0,0,5,5} prunes both zeros; row 1: {9,8,7,6} -> 7,6;
    // {1,2,2,1} prunes the two 1s
    int[] expected = {1, 3, 4, 5, 10, 11, 12, 15};
    assertEquals(expected.length, twoFour.cardinality());
    for (int i : expected) {
      assertTrue(twoFour.get(i), "index " + i);
    }
    BitSet fourEight = MaskSelection.selectNm(scores, 2, 8, new NmPattern(4, 8));
    // one group per row: {4,1,3,2,0,0,5,5} prunes 0,0,1,2; {9,8,7,6,1,2,2,1} prunes 1,2,2,1
    int[] expected48 = {1, 3, 4, 5, 12, 13, 14, 15};
    assertEquals(expected48.length, fourEight.cardinality());
    for (int i : expected48) {
      assertTrue(fourEight.get(i), "index " + i);
    }
    assertThrows(
        IllegalArgumentException.class,
        () -> MaskSelection.selectNm(new float[6], 1, 6, new NmPattern(2, 4)));
  }
}
