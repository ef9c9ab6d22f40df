package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Exhaustive checks of the fp16 conversions against the IEEE definition. */
class Fp16Test {

  @Test
  void everyNonNanHalfRoundTrips() {
    for (int h = 0; h < 0x10000; h++) {
      float f = Fp16.toFloat((short) h);
      if (Float.isNaN(f)) {
        assertTrue((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
        assertTrue(Float.isNaN(Fp16.toFloat(Fp16.fromFloat(f))));
        continue;
      }
      assertEquals(h, Fp16.fromFloat(f) & 0xffff, "half 0x" + Integer.toHexString(h));
    }
  }

  @Test
  void decodesKnownValues() {
    assertEquals(1.0f, Fp16.toFloat((short) 0x3c00));
    assertEquals(-2.0f, Fp16.toFloat((short) 0xc000));
    assertEquals(65504f, Fp16.toFloat((short) 0x7bff));
    assertEquals(0x1p-24f, Fp16.toFloat((short) 0x0001));
    assertEquals(0x1p-14f, Fp16.toFloat((short) 0x0400));
    assertEquals(Float.POSITIVE_INFINITY, Fp16.toFloat((short) 0x7c00));
  }

  @Test
  void midpointsRoundToEvenAndNeighboursToNearest() {
    for (int h = 0; h < 0x7bff; h++) {
      float a = Fp16.toFloat((short) h);
      float b = Fp16.toFloat((short) (h + 1));
      float mid = (a + b) / 2; // exact: one more significant bit than a half has
      int even = (h & 1) == 0 ? h : h + 1;
      assertEquals(even, Fp16.fromFloat(mid), "midpoint after 0x" + Integer.toHexString(h));
      assertEquals(h, Fp16.fromFloat(Math.nextDown(mid)));
      assertEquals(h + 1, Fp16.fromFloat(Math.nextUp(mid)));
      assertEquals(h | 0x8000, Fp16.fromFloat(-Math.nextDown(mid)) & 0xffff);
    }
  }

  @Test
  void overflowGoesToInfinity() {
    assertEquals(0x7bff, Fp16.fromFloat(Math.nextDown(65520f)));
    assertEquals(0x7c00, Fp16.fromFloat(65520f));
    assertEquals(0x7c00, Fp16.fromFloat(1e10f));
    assertEquals(0xfc00, Fp16.fromFloat(-1e10f) & 0xffff);
    assertEquals(0, Fp16.fromFloat(0x1p-26f)); // below half the smallest subnormal
    assertEquals(1, Fp16.fromFloat(Math.nextUp(0x1p-25f)));
  }
}
