package dev.compactor.bench;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * This machine's memory-copy bandwidth, the yardstick streaming benchmarks divide by: a copy
 * between two large direct buffers ({@code ByteBuffer.put}, which is a native memcpy), split over
 * {@code threads} threads, best of {@code reps} runs after a warm-up, in GB/s of bytes copied (each
 * byte is read once and written once).
 */
final class MemoryBandwidth {

  private MemoryBandwidth() {}

  static double copyGbPerSecond(ByteBuffer src, ByteBuffer dst, int threads, int reps)
      throws Exception {
    int size = Math.min(src.capacity(), dst.capacity());
    int part = size / threads;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      double best = 0;
      for (int rep = 0; rep <= reps; rep++) {
        List<Future<?>> fs = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int t = 0; t < threads; t++) {
          int off = t * part;
          fs.add(
              pool.submit(
                  () -> {
                    ByteBuffer s = src.duplicate().position(off).limit(off + part);
                    ByteBuffer d = dst.duplicate().position(off).limit(off + part);
                    d.put(s);
                  }));
        }
        for (Future<?> f : fs) {
          f.get();
        }
        double gbps = (double) part * threads / (System.nanoTime() - t0);
        if (rep > 0) {
          best = Math.max(best, gbps);
        }
      }
      return best;
    } finally {
      pool.shutdownNow();
    }
  }

  /** {single thread, all threads} bandwidth in GB/s over buffers of {@code bytes} each. */
  static double[] measure(int bytes, int threads, int reps) throws Exception {
    ByteBuffer src = ByteBuffer.allocateDirect(bytes);
    ByteBuffer dst = ByteBuffer.allocateDirect(bytes);
    for (int i = 0; i + 8 <= bytes; i += 8) {
      src.putLong(i, i * 0x9E3779B97F4A7C15L);
      dst.putLong(i, 0); // touch every page so first-touch faults are not timed
    }
    return new double[] {
      copyGbPerSecond(src, dst, 1, reps), copyGbPerSecond(src, dst, threads, reps)
    };
  }
}
