package dev.compactor.core.infer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The fixed pool that splits the rows of each matrix-vector product (and the heads of attention)
 * into contiguous ranges, one per thread; the calling thread computes the first range itself, so
 * {@code threads = 1} runs inline with no hand-off.
 *
 * <p>Size: {@value #ENV} if set (an integer {@code >= 1}), else {@link
 * Runtime#availableProcessors()}.
 */
public final class InferThreads implements AutoCloseable {

  /** Environment variable with the number of inference threads. */
  public static final String ENV = "COMPACTOR_INFER_THREADS";

  /** A body over the index range {@code [from, to)}. */
  @FunctionalInterface
  public interface Range {
    void run(int from, int to);
  }

  private final int threads;
  private final ExecutorService pool;

  public InferThreads(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("inference threads must be >= 1, found " + threads);
    }
    this.threads = threads;
    AtomicInteger n = new AtomicInteger();
    this.pool =
        threads == 1
            ? null
            : Executors.newFixedThreadPool(
                threads - 1,
                r -> {
                  Thread t = new Thread(r, "compactor-infer-" + n.incrementAndGet());
                  t.setDaemon(true);
                  return t;
                });
  }

  /** The thread count {@value #ENV} asks for, else the number of available processors. */
  public static int fromEnvironment() {
    return parse(System.getenv(ENV), Runtime.getRuntime().availableProcessors());
  }

  static int parse(String value, int dflt) {
    if (value == null || value.isBlank()) {
      return dflt;
    }
    int n;
    try {
      n = Integer.parseInt(value.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(ENV + ": expected an integer >= 1, found '" + value + "'");
    }
    if (n < 1) {
      throw new IllegalArgumentException(ENV + ": expected an integer >= 1, found " + n);
    }
    return n;
  }

  public int threads() {
    return threads;
  }

  /** Runs {@code body} over {@code [0, n)} split into at most {@link #threads()} ranges. */
  public void forRange(int n, Range body) {
    int parts = Math.min(threads, n);
    if (parts <= 1) {
      body.run(0, n);
      return;
    }
    List<Future<?>> others = new ArrayList<>(parts - 1);
    for (int p = 1; p < parts; p++) {
      int from = (int) ((long) n * p / parts);
      int to = (int) ((long) n * (p + 1) / parts);
      others.add(pool.submit(() -> body.run(from, to)));
    }
    body.run(0, (int) ((long) n / parts));
    for (Future<?> f : others) {
      try {
        f.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted during inference", e);
      } catch (ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof RuntimeException r) {
          throw r;
        }
        if (c instanceof Error err) {
          throw err;
        }
        throw new IllegalStateException(c);
      }
    }
  }

  @Override
  public void close() {
    if (pool != null) {
      pool.shutdownNow();
    }
  }
}
