package dev.compactor.core.gguf;

import dev.compactor.core.io.TensorChunkReader;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Streams tensors from a {@link TensorSource} into a {@link GgufWriter} in chunks of whole rows, so
 * exporting a checkpoint needs a working set of a few chunks whatever the model's size: {@code
 * threads} workers each read their share of a chunk's rows with positional reads ({@link
 * TensorChunkReader}), widen them to fp32 and quantize them, while the calling thread writes the
 * previous chunk (two output buffers). The bytes are those of quantizing the whole tensor at once.
 *
 * <p>Working set: about {@code 4 * chunkValues} bytes of fp32 rows, two chunk outputs, and one 1
 * MiB direct read buffer per worker. A chunk holds at least one row (one head's rows for a
 * RoPE-permuted tensor), so a single row longer than {@code chunkValues} still goes through.
 */
final class ChunkedTensorQuantizer implements AutoCloseable {

  /**
   * One tensor to export. {@code permuteHeads > 0} reorders each head's rows as {@link
   * LlamaGgufExporter#permuteForRope} does; {@code importance} may be null.
   */
  record Job(
      String hfName,
      String ggufName,
      long rows,
      int cols,
      GgmlType type,
      int permuteHeads,
      float[] importance) {}

  private record Chunk(Job job, long r0, long r1) {}

  private final TensorSource source;
  private final int threads;
  private final long chunkValues;
  private final ExecutorService pool;
  private final TensorChunkReader[] readers;
  private final float[][] rows;
  private final byte[][] outputs = {new byte[0], new byte[0]};

  ChunkedTensorQuantizer(TensorSource source, int threads, long chunkValues) {
    if (threads < 1 || chunkValues < 1) {
      throw new IllegalArgumentException(
          "threads and chunkValues must be >= 1, found " + threads + " and " + chunkValues);
    }
    this.source = source;
    this.threads = threads;
    this.chunkValues = chunkValues;
    AtomicInteger n = new AtomicInteger();
    this.pool =
        Executors.newFixedThreadPool(
            threads,
            r -> {
              Thread t = new Thread(r, "gguf-quantize-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.readers = new TensorChunkReader[threads];
    this.rows = new float[threads][0];
    for (int i = 0; i < threads; i++) {
      readers[i] = new TensorChunkReader();
    }
  }

  /** Quantizes and writes every job in order; the writer's declared tensors must match. */
  void run(List<Job> jobs, GgufWriter w) throws IOException {
    List<Chunk> chunks = new ArrayList<>();
    for (Job j : jobs) {
      int group = rowGroup(j);
      long perChunk = Math.max(1, chunkValues / ((long) j.cols() * group)) * group;
      for (long r0 = 0; r0 < j.rows(); r0 += perChunk) {
        chunks.add(new Chunk(j, r0, Math.min(j.rows(), r0 + perChunk)));
      }
    }
    List<Future<?>> pending = chunks.isEmpty() ? List.of() : submit(chunks.get(0), 0);
    for (int k = 0; k < chunks.size(); k++) {
      await(pending);
      pending = k + 1 < chunks.size() ? submit(chunks.get(k + 1), (k + 1) % 2) : List.of();
      Chunk c = chunks.get(k);
      int len = (int) (c.job().type().bytesFor(c.job().cols()) * (c.r1() - c.r0()));
      w.writeTensorPart(c.job().ggufName(), outputs[k % 2], 0, len);
    }
  }

  /** Rows that must stay together: one head's rows when permuting, else one row. */
  private static int rowGroup(Job j) {
    if (j.permuteHeads() <= 0) {
      return 1;
    }
    long group = j.rows() / j.permuteHeads();
    if (j.rows() % (2L * j.permuteHeads()) != 0) {
      throw new IllegalArgumentException(
          "cannot permute "
              + j.rows()
              + "x"
              + j.cols()
              + " into "
              + j.permuteHeads()
              + " heads of interleaved pairs");
    }
    return Math.toIntExact(group);
  }

  private List<Future<?>> submit(Chunk c, int slot) {
    Job j = c.job();
    int group = rowGroup(j);
    long rowBytes = j.type().bytesFor(j.cols());
    long bytes = rowBytes * (c.r1() - c.r0());
    if (bytes > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("chunk of " + j.ggufName() + " too large: " + bytes);
    }
    if (outputs[slot].length < bytes) {
      outputs[slot] = new byte[(int) bytes];
    }
    byte[] out = outputs[slot];
    long groups = (c.r1() - c.r0()) / group;
    List<Future<?>> futures = new ArrayList<>(threads);
    for (int p = 0; p < threads; p++) {
      long g0 = groups * p / threads;
      long g1 = groups * (p + 1) / threads;
      if (g1 == g0) {
        continue;
      }
      int part = p;
      long first = c.r0() + g0 * group;
      long last = c.r0() + g1 * group;
      futures.add(pool.submit(() -> quantizeRows(part, j, group, c.r0(), first, last, out)));
    }
    return futures;
  }

  /** Rows {@code [first, last)} of {@code j} (chunk starting at {@code r0}) into {@code out}. */
  private void quantizeRows(
      int part, Job j, int group, long r0, long first, long last, byte[] out) {
    int cols = j.cols();
    int n = Math.toIntExact((last - first) * cols);
    if (rows[part].length < n) {
      rows[part] = new float[n];
    }
    float[] x = rows[part];
    try {
      readers[part].read(source, j.hfName(), first * cols, x, 0, n);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    long rowBytes = j.type().bytesFor(cols);
    int half = group / 2;
    for (int local = 0; local < last - first; local++) {
      int src = local;
      if (j.permuteHeads() > 0) {
        // Output row 2*i + s of a head comes from input row s*half + i of that head.
        int head = local / group;
        int within = local % group;
        src = head * group + (within % 2) * half + within / 2;
      }
      int yOff = (int) ((first - r0 + local) * rowBytes);
      GgmlQuantizer.quantizeRow(j.type(), x, src * cols, cols, out, yOff, j.importance());
    }
  }

  private static void await(List<Future<?>> futures) throws IOException {
    try {
      for (Future<?> f : futures) {
        f.get();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while quantizing", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof UncheckedIOException u) {
        throw u.getCause();
      }
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      if (cause instanceof Error err) {
        throw err;
      }
      throw new IOException(cause);
    }
  }

  @Override
  public void close() {
    pool.shutdownNow();
  }
}
