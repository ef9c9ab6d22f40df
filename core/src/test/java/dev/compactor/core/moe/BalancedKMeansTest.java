package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class BalancedKMeansTest {

  /**
   * 4 well-separated blobs of 10 points each in 6-D, in shuffled order; {@code blob[i]} is truth.
   */
  private static float[][] blobs(int[] blob, long seed) {
    Random r = new Random(seed);
    float[][] centres = new float[4][6];
    for (int c = 0; c < 4; c++) {
      centres[c][c] = 10;
    }
    float[][] p = new float[40][6];
    for (int i = 0; i < 40; i++) {
      blob[i] = i % 4;
    }
    for (int i = 39; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = blob[i];
      blob[i] = blob[j];
      blob[j] = t;
    }
    for (int i = 0; i < 40; i++) {
      for (int d = 0; d < 6; d++) {
        p[i][d] = centres[blob[i]][d] + (float) r.nextGaussian();
      }
    }
    return p;
  }

  @Test
  void recoversPlantedEqualClusters() {
    int[] truth = new int[40];
    float[][] points = blobs(truth, 3);
    int[] got = BalancedKMeans.cluster(points, 4, 50, 1);
    int[] labelOf = {-1, -1, -1, -1};
    for (int i = 0; i < 40; i++) {
      if (labelOf[truth[i]] < 0) {
        labelOf[truth[i]] = got[i];
      }
      assertEquals(labelOf[truth[i]], got[i], "point " + i + " left its blob");
    }
  }

  @Test
  void clustersAreEqualSizedEvenWhenTheDataIsNotAndTheSeedDecides() {
    Random r = new Random(9);
    // 48 points: 36 around one centre, 12 around another; k = 4 must still give 12 each
    float[][] p = new float[48][3];
    for (int i = 0; i < 48; i++) {
      float base = i < 36 ? 0 : 20;
      for (int d = 0; d < 3; d++) {
        p[i][d] = base + (float) r.nextGaussian();
      }
    }
    int[] a = BalancedKMeans.cluster(p, 4, 30, 42);
    int[] sizes = new int[4];
    for (int c : a) {
      sizes[c]++;
    }
    assertArrayEquals(new int[] {12, 12, 12, 12}, sizes);
    assertArrayEquals(a, BalancedKMeans.cluster(p, 4, 30, 42), "same seed, same clusters");
    // the far group of 12 is one cluster
    for (int i = 37; i < 48; i++) {
      assertEquals(a[36], a[i]);
    }
    assertTrue(BalancedKMeans.inertia(p, a, 4) < BalancedKMeans.inertia(p, roundRobin(48, 4), 4));
  }

  @Test
  void refusesAKThatDoesNotDivideThePoints() {
    assertThrows(
        IllegalArgumentException.class, () -> BalancedKMeans.cluster(new float[10][2], 4, 5, 1));
  }

  private static int[] roundRobin(int n, int k) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i % k;
    }
    return a;
  }
}
