package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class TrainingOrderTest {

  @Test
  void everyEpochVisitsEachWindowOnceAndOrderDependsOnlyOnSeedAndStep() {
    TrainingOrder order = new TrainingOrder(10, 5, 42);
    int[] epoch0 = concat(order.batch(0), order.batch(1));
    int[] epoch1 = concat(order.batch(2), order.batch(3));
    int[] sorted = epoch0.clone();
    Arrays.sort(sorted);
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, sorted);
    sorted = epoch1.clone();
    Arrays.sort(sorted);
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, sorted);
    assertEquals(false, Arrays.equals(epoch0, epoch1), "epochs are reshuffled");
    // A fresh instance asked for a late step first (a resumed run) sees the same batches.
    TrainingOrder resumed = new TrainingOrder(10, 5, 42);
    assertArrayEquals(order.batch(3), resumed.batch(3));
    assertArrayEquals(order.batch(0), resumed.batch(0));
  }

  private static int[] concat(int[] a, int[] b) {
    int[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
