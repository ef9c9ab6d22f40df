package dev.compactor.core.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The one way the project records gradients. DJL's PyTorch engine allows a single open {@link
 * GradientCollector} per JVM (a static flag), and a collector opened while another is open throws
 * after switching its thread's grad mode on, which it then never switches off: the thread's next
 * in-place parameter update fails ("a leaf Variable that requires grad is being used in an in-place
 * operation"). A stage worker runs several jobs at once (distillation, QAT, codebook Fisher
 * sensitivities, MoEfication routers, recovery), so every backward pass takes its collector here:
 * it waits while another thread's collector is open, and its close lets the next one in. Training
 * jobs in one JVM then alternate step by step instead of failing.
 *
 * <p>Grad mode is per thread in libtorch and on by default; DJL switches it off only on the thread
 * that loads the engine, and a collector restores whatever its thread had. A worker thread's first
 * collector would so leave grad mode on and its optimizer's in-place update fail; closing an
 * Autograd collector always switches grad mode off, the state outside collectors everywhere.
 */
public final class Autograd {

  private static final ReentrantLock LOCK = new ReentrantLock(true);

  private Autograd() {}

  /** A gradient collector, once no other thread has one open; close it to let the next in. */
  public static GradientCollector collector() {
    LOCK.lock();
    try {
      return new Held(Engine.getInstance().newGradientCollector());
    } catch (RuntimeException | Error e) {
      LOCK.unlock();
      throw e;
    }
  }

  /** Whether some thread holds a collector now (for tests). */
  static boolean held() {
    return LOCK.isLocked();
  }

  private static final class Held implements GradientCollector {
    private final GradientCollector inner;
    private boolean closed;

    Held(GradientCollector inner) {
      this.inner = inner;
    }

    @Override
    public void backward(NDArray target) {
      inner.backward(target);
    }

    @Override
    public void zeroGradients() {
      inner.zeroGradients();
    }

    @Override
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      try {
        inner.close();
        JniUtils.setGradMode(false);
      } finally {
        LOCK.unlock();
      }
    }
  }
}
