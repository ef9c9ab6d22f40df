package dev.compactor.core.infer;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The fixed team of threads that splits the rows of each matrix-vector product (and the heads of
 * attention) into contiguous ranges, one per thread; the calling thread computes the first range
 * itself, so {@code threads = 1} runs inline with no hand-off.
 *
 * <p>A decode step hands off about five ranges per layer, each only tens of microseconds of work,
 * so the hand-off itself must cost far less than that. An executor's submit-and-wait parks and
 * wakes a thread each time (measured: two threads decoded no faster than one, 10.7 vs 9.3 ms per
 * token on the 124 M Q4_0 model of {@code QuantDecodeBench}). Here the workers spin on a volatile
 * ticket instead, as llama.cpp's thread pool does, and park only after {@value #SPIN_NANOS} ns
 * without work; the caller wakes parked workers. The ranges are claimed from the ticket (a
 * generation and the next unclaimed range in one atomic {@code long}), and the caller claims too:
 * on a loaded machine, where a worker may not be scheduled for milliseconds, the caller computes
 * the ranges nobody has taken instead of waiting for that worker.
 *
 * <p>Size: {@value #ENV} if set (an integer {@code >= 1}), else {@link
 * Runtime#availableProcessors()}. One {@code forRange} runs at a time (callers are serialised); a
 * body that calls {@code forRange} again (on the caller or a worker) runs that inner range inline.
 */
public final class InferThreads implements AutoCloseable {

  /** Environment variable with the number of inference threads. */
  public static final String ENV = "COMPACTOR_INFER_THREADS";

  /** How long an idle worker spins for the next range before it parks. */
  static final long SPIN_NANOS = 2_000_000;

  /** A body over the index range {@code [from, to)}. */
  @FunctionalInterface
  public interface Range {
    void run(int from, int to);
  }

  private final int threads;
  private final Thread[] workers;

  // the current hand-off: written by the caller before the volatile write of the ticket that
  // opens it, and stable until every range it opened has completed
  private Range task;
  private int n;
  private int parts;

  /** Generation in the high 32 bits, the next unclaimed range in the low 32. */
  private final AtomicLong ticket = new AtomicLong();

  private final AtomicInteger done = new AtomicInteger();
  private volatile Throwable failure;
  private volatile boolean closed;
  private final boolean[] parked;
  private volatile Thread owner;

  public InferThreads(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("inference threads must be >= 1, found " + threads);
    }
    this.threads = threads;
    this.workers = new Thread[threads - 1];
    this.parked = new boolean[threads - 1];
    for (int i = 0; i < workers.length; i++) {
      int id = i;
      Thread t = new Thread(() -> work(id), "compactor-infer-" + (i + 1));
      t.setDaemon(true);
      workers[i] = t;
      t.start();
    }
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
    int p = Math.min(threads, n);
    Thread me = Thread.currentThread();
    if (p <= 1 || owner == me || isWorker(me)) {
      body.run(0, n);
      return;
    }
    synchronized (this) {
      if (closed) {
        throw new IllegalStateException("inference threads are closed");
      }
      owner = me;
      try {
        this.task = body;
        this.n = n;
        this.parts = p;
        failure = null;
        done.set(0);
        long generation = (ticket.get() >>> 32) + 1;
        ticket.set(generation << 32); // opens the hand-off: publishes task, n, parts
        for (int i = 0; i < workers.length; i++) {
          if (isParked(i)) {
            LockSupport.unpark(workers[i]);
          }
        }
        claimAndRun(generation);
        int spins = 0;
        while (done.get() != p) {
          if (++spins < 4096) {
            Thread.onSpinWait();
          } else {
            Thread.yield();
          }
        }
        Throwable t = failure;
        if (t instanceof RuntimeException r) {
          throw r;
        }
        if (t instanceof Error e) {
          throw e;
        }
        if (t != null) {
          throw new IllegalStateException(t);
        }
      } finally {
        task = null;
        owner = null;
      }
    }
  }

  /** Claims and runs ranges of {@code generation} until none is left. */
  private void claimAndRun(long generation) {
    while (true) {
      long t = ticket.get();
      if (t >>> 32 != generation) {
        return;
      }
      int part = (int) t;
      // the fields were published before this generation's ticket was written
      if (part >= parts) {
        return;
      }
      if (!ticket.compareAndSet(t, t + 1)) {
        continue;
      }
      int p = parts;
      try {
        task.run((int) ((long) n * part / p), (int) ((long) n * (part + 1) / p));
      } catch (Throwable e) {
        failure = e;
      } finally {
        done.incrementAndGet();
      }
    }
  }

  private boolean isWorker(Thread t) {
    for (Thread w : workers) {
      if (w == t) {
        return true;
      }
    }
    return false;
  }

  private boolean isParked(int i) {
    synchronized (parked) {
      return parked[i];
    }
  }

  private void setParked(int i, boolean v) {
    synchronized (parked) {
      parked[i] = v;
    }
  }

  private void work(int id) {
    long seen = 0;
    while (true) {
      long idleSince = System.nanoTime();
      int spins = 0;
      long g;
      while ((g = ticket.get() >>> 32) == seen && !closed) {
        Thread.onSpinWait();
        if ((++spins & 255) == 0 && System.nanoTime() - idleSince > SPIN_NANOS) {
          setParked(id, true);
          // re-check after announcing: the caller writes the ticket before reading parked
          if (ticket.get() >>> 32 == seen && !closed) {
            LockSupport.parkNanos(this, 100_000_000L);
          }
          setParked(id, false);
          idleSince = System.nanoTime();
        }
      }
      if (closed) {
        return;
      }
      seen = g;
      claimAndRun(g);
    }
  }

  @Override
  public void close() {
    closed = true;
    for (Thread t : workers) {
      LockSupport.unpark(t);
    }
  }
}
