package dev.compactor.core.infer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class InferThreadsTest {

  @Test
  void everyIndexIsCoveredExactlyOnceOverManyHandOffs() {
    try (InferThreads t = new InferThreads(3)) {
      for (int n : new int[] {1, 2, 3, 4, 7, 100, 1001}) {
        for (int rep = 0; rep < 2000; rep++) {
          int[] hits = new int[n];
          int round = rep;
          t.forRange(
              n,
              (from, to) -> {
                for (int i = from; i < to; i++) {
                  hits[i] += round + 1; // plain writes: visible to the caller after forRange
                }
              });
          int[] want = new int[n];
          Arrays.fill(want, rep + 1);
          assertArrayEquals(want, hits, "n " + n + " rep " + rep);
        }
      }
    }
  }

  @Test
  void workersWakeAfterParking() throws InterruptedException {
    try (InferThreads t = new InferThreads(2)) {
      AtomicInteger sum = new AtomicInteger();
      t.forRange(10, (from, to) -> sum.addAndGet(to - from));
      Thread.sleep(InferThreads.SPIN_NANOS / 1_000_000 * 3 + 20); // the worker parks
      t.forRange(10, (from, to) -> sum.addAndGet(to - from));
      assertEquals(20, sum.get());
    }
  }

  @Test
  void aWorkersExceptionReachesTheCallerAndThePoolStaysUsable() {
    try (InferThreads t = new InferThreads(2)) {
      IllegalStateException boom = new IllegalStateException("boom");
      IllegalStateException e =
          assertThrows(
              IllegalStateException.class,
              () ->
                  t.forRange(
                      10,
                      (from, to) -> {
                        if (from > 0) {
                          throw boom;
                        }
                      }));
      assertSame(boom, e);
      AtomicInteger sum = new AtomicInteger();
      t.forRange(10, (from, to) -> sum.addAndGet(to - from));
      assertEquals(10, sum.get());
    }
  }

  @Test
  void aNestedRangeRunsInline() {
    try (InferThreads t = new InferThreads(2)) {
      AtomicInteger inner = new AtomicInteger();
      t.forRange(4, (from, to) -> t.forRange(5, (a, b) -> inner.addAndGet(b - a)));
      // the caller's inner call runs inline; the worker's inner call also runs inline (it waits
      // for nobody), so each of the two outer ranges adds 5
      assertEquals(10, inner.get());
    }
  }

  @Test
  void callsFromSeveralThreadsAreSerialised() throws InterruptedException {
    try (InferThreads t = new InferThreads(2)) {
      long[] totals = new long[4];
      Thread[] callers = new Thread[4];
      for (int c = 0; c < callers.length; c++) {
        int id = c;
        callers[c] =
            new Thread(
                () -> {
                  for (int rep = 0; rep < 300; rep++) {
                    long[] part = new long[2];
                    t.forRange(
                        1000,
                        (from, to) -> {
                          long s = 0;
                          for (int i = from; i < to; i++) {
                            s += i;
                          }
                          part[from == 0 ? 0 : 1] = s;
                        });
                    totals[id] += part[0] + part[1];
                  }
                });
        callers[c].start();
      }
      for (Thread c : callers) {
        c.join();
      }
      for (long total : totals) {
        assertEquals(300L * 999 * 1000 / 2, total);
      }
    }
  }
}
