package dev.compactor.core.share;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.factorize.LowRankFactorizer;
import dev.compactor.core.io.SafetensorsFile;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Basis Sharing against torch.linalg.svd goldens (make_share_golden.py), and the matrix-sharing
 * planner against hand-checked groups.
 */
class BasisSharingTest {

  static final Path GOLDEN = Path.of("src/test/resources/golden/share/share_golden.safetensors");

  static double[] doubles(SafetensorsFile f, String name) throws Exception {
    DoubleBuffer b = f.raw(name).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
    double[] d = new double[b.remaining()];
    b.get(d);
    return d;
  }

  @Test
  void bothSidesReconstructTheTorchTruncationOfTheStackedGroup() throws Exception {
    try (SafetensorsFile f = SafetensorsFile.open(GOLDEN)) {
      assertEquals("compactor-share-golden", f.metadata().get("magic"));
      assertEquals("1", f.metadata().get("version"));
      int r = Integer.parseInt(f.metadata().get("rank"));
      long[] shape = f.info("W0").shape();
      int out = (int) shape[0];
      int in = (int) shape[1];
      List<float[]> ws = new ArrayList<>();
      for (int l = 0; l < 3; l++) {
        ws.add(f.readFloats("W" + l));
      }
      for (BasisSharing.Side side : BasisSharing.Side.values()) {
        BasisSharing.Factors fs = BasisSharing.share(side, ws, out, in, r);
        assertEquals(r, fs.rank());
        double[] s = doubles(f, side.key() + ".S");
        double total = 0;
        double kept = 0;
        for (int j = 0; j < s.length; j++) {
          total += s[j] * s[j];
          kept += j < r ? s[j] * s[j] : 0;
        }
        assertEquals(kept / total, fs.energy(), 1e-9, side + " energy");
        for (int l = 0; l < 3; l++) {
          // the shared side is one array, the other one per layer
          if (side == BasisSharing.Side.OUT) {
            assertSame(fs.u().get(0), fs.u().get(l));
            assertEquals(out * r, fs.u().get(l).length);
            assertEquals(r * in, fs.v().get(l).length);
          } else {
            assertSame(fs.v().get(0), fs.v().get(l));
          }
          float[] p = LowRankFactorizer.product(fs.u().get(l), fs.v().get(l), out, r, in);
          double[] want = doubles(f, side.key() + ".P" + l);
          for (int e = 0; e < p.length; e++) {
            assertEquals(want[e], p[e], 2e-5, side + " W" + l + "[" + e + "]");
          }
        }
      }
    }
  }

  @Test
  void rankSpendsTheRatioOfTheGroupsDenseParameters() {
    // out side, 2 layers of [256, 1024]: floor(0.5 * 2 * 256 * 1024 / (256 + 2048)) = 113
    assertEquals(113, BasisSharing.rank(BasisSharing.Side.OUT, 2, 256, 1024, 0.5));
    assertEquals(
        113L * (256 + 2048), BasisSharing.parameters(BasisSharing.Side.OUT, 2, 256, 1024, 113));
    // in side shares [r, in]: floor(0.5 * 2 * 256 * 1024 / (1024 + 512)) = 170
    assertEquals(170, BasisSharing.rank(BasisSharing.Side.IN, 2, 256, 1024, 0.5));
    assertEquals(
        170L * (1024 + 512), BasisSharing.parameters(BasisSharing.Side.IN, 2, 256, 1024, 170));
    // never below 1
    assertEquals(1, BasisSharing.rank(BasisSharing.Side.OUT, 2, 4, 100, 0.001));
    assertThrows(
        IllegalArgumentException.class,
        () -> BasisSharing.share(BasisSharing.Side.OUT, List.of(new float[6]), 2, 3, 3));
  }

  static float[] random(Random r, int n, float scale) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (r.nextGaussian() * scale);
    }
    return a;
  }

  @Test
  void plannerMergesTheMostSimilarNeighboursFirstAndRefusesAnUnreachableBudget() {
    Random rnd = new Random(5);
    // kind "a": layers 1 and 2 nearly equal, 0 and 3 unrelated; kind "b" all unrelated
    float[] base = random(rnd, 50, 1);
    List<float[]> a = new ArrayList<>();
    a.add(random(rnd, 50, 1));
    a.add(base);
    float[] near = base.clone();
    float[] noise = random(rnd, 50, 0.01f);
    for (int i = 0; i < near.length; i++) {
      near[i] += noise[i];
    }
    a.add(near);
    a.add(random(rnd, 50, 1));
    List<float[]> b = new ArrayList<>();
    for (int l = 0; l < 4; l++) {
      b.add(random(rnd, 50, 1));
    }
    MatrixSharing.Kind ka = new MatrixSharing.Kind("a", 50, MatrixSharing.dots(a));
    MatrixSharing.Kind kb = new MatrixSharing.Kind("b", 50, MatrixSharing.dots(b));
    assertTrue(ka.cosine(1, 2) > 0.99, "cosine " + ka.cosine(1, 2));
    // 8 matrices of 50; keep 7
    List<MatrixSharing.Group> g = MatrixSharing.plan(List.of(ka, kb), 7 * 50, 4);
    assertEquals(7, g.size());
    MatrixSharing.Group merged = g.get(1);
    assertEquals("a", merged.linear());
    assertArrayEquals(new int[] {1, 3}, new int[] {merged.from(), merged.to()});
    // error of sharing the mean of two vectors: ||x - y||^2 / 2 over ||x||^2 + ||y||^2
    double d = 0;
    double e = 0;
    for (int i = 0; i < 50; i++) {
      d += (double) (base[i] - near[i]) * (base[i] - near[i]);
      e += (double) base[i] * base[i] + (double) near[i] * near[i];
    }
    assertEquals(d / 2 / e, merged.relativeError(), 1e-9);
    IllegalArgumentException refused =
        assertThrows(
            IllegalArgumentException.class, () -> MatrixSharing.plan(List.of(ka, kb), 3 * 50, 2));
    assertTrue(refused.getMessage().contains("--max-group"), refused.getMessage());
    float[] m = MatrixSharing.mean(List.of(new float[] {1, 2}, new float[] {3, 6}));
    assertArrayEquals(new float[] {2, 4}, m);
  }
}
