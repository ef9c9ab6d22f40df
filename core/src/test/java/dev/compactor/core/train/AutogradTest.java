package dev.compactor.core.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Two threads training at once: DJL's own collectors collide (the reason {@link Autograd} exists),
 * Autograd's wait for each other and both threads' gradients and in-place updates come out right.
 */
class AutogradTest {

  /** One SGD step of x ← x − 0.5·d(sum(x²))/dx = 0 on [1, 2, 3], in place like AdamW. */
  private static float[] step() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray x = m.create(new float[] {1, 2, 3});
      x.setRequiresGradient(true);
      try (GradientCollector gc = Autograd.collector()) {
        gc.backward(x.mul(x).sum());
      }
      x.subi(x.getGradient().mul(0.5f));
      return x.toFloatArray();
    }
  }

  @Test
  void aFreshThreadCanUpdateInPlaceAfterItsCollector() throws Exception {
    // libtorch's grad mode is per thread and on by default: a raw DJL collector leaves it on
    float[][] out = new float[1][];
    Throwable[] failed = new Throwable[1];
    Thread t =
        new Thread(
            () -> {
              try {
                out[0] = step();
              } catch (Throwable e) {
                failed[0] = e;
              }
            });
    t.start();
    t.join();
    assertTrue(failed[0] == null, "" + failed[0]);
    assertArrayEquals(new float[] {0, 0, 0}, out[0]);
  }

  @Test
  void concurrentTrainingWaitsInsteadOfFailing() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      CountDownLatch open = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      // DJL alone: a second collector while one is open is refused
      Future<?> holder =
          pool.submit(
              () -> {
                try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                  open.countDown();
                  release.await(10, TimeUnit.SECONDS);
                }
                return null;
              });
      open.await(10, TimeUnit.SECONDS);
      Future<?> second =
          pool.submit(
              () -> {
                Engine.getInstance().newGradientCollector().close();
                return null;
              });
      Exception refused = assertThrows(Exception.class, () -> second.get(10, TimeUnit.SECONDS));
      assertTrue(refused.getCause().getMessage().contains("already collecting"), "" + refused);
      release.countDown();
      holder.get(10, TimeUnit.SECONDS);
    } finally {
      pool.shutdownNow();
    }

    ExecutorService fresh = Executors.newFixedThreadPool(2);
    try {
      // Autograd: one thread holds a collector, the other waits, then both train correctly
      CountDownLatch open = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      Future<?> holder =
          fresh.submit(
              () -> {
                try (GradientCollector gc = Autograd.collector()) {
                  open.countDown();
                  release.await(10, TimeUnit.SECONDS);
                }
                return null;
              });
      open.await(10, TimeUnit.SECONDS);
      Future<float[]> waiting = fresh.submit(AutogradTest::step);
      Thread.sleep(200);
      assertFalse(waiting.isDone(), "the second thread waits for the open collector");
      release.countDown();
      holder.get(10, TimeUnit.SECONDS);
      assertArrayEquals(new float[] {0, 0, 0}, waiting.get(10, TimeUnit.SECONDS));
      assertArrayEquals(new float[] {0, 0, 0}, fresh.submit(AutogradTest::step).get());
      assertFalse(Autograd.held());
    } finally {
      fresh.shutdownNow();
    }
  }
}
