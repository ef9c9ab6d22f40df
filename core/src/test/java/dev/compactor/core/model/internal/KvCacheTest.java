package dev.compactor.core.model.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class KvCacheTest {

  /** A windowed layer keeps only its last positions; other layers keep everything. */
  @Test
  void retainKeepsTheLastWindowOfOneLayer() {
    try (NDManager m = NDManager.newBaseManager();
        KvCache cache = new KvCache(m, 2)) {
      for (int step = 0; step < 5; step++) {
        NDArray k = m.create(new float[] {step, 10 + step}, new Shape(1, 1, 1, 2));
        NDArray v = m.create(new float[] {-step, -10 - step}, new Shape(1, 1, 1, 2));
        for (int layer = 0; layer < 2; layer++) {
          NDArray[] all = cache.append(layer, k, v);
          assertEquals(layer == 0 ? step + 1 : Math.min(step + 1, 3), all[0].getShape().get(2));
          if (layer == 1) {
            cache.retain(layer, 2);
          }
        }
        cache.advance(1);
      }
      NDArray zero = m.zeros(new Shape(1, 1, 1, 2));
      NDArray[] last = cache.append(1, zero, zero);
      assertArrayEquals(new float[] {3, 13, 4, 14, 0, 0}, last[0].toFloatArray());
      assertArrayEquals(new float[] {-3, -13, -4, -14, 0, 0}, last[1].toFloatArray());
      assertEquals(5, cache.position());
    }
  }
}
