package dev.compactor.core.gguf;

import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorChunkReader;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Streams tensors from a {@link TensorSource} into a {@link GgufWriter} in chunks of whole rows, so
 * exporting a checkpoint needs a working set of a few chunks whatever the model's size. Three
 * stages overlap: one reader thread fetches the raw bytes of the chunks ahead ({@link
 * TensorSource#readRawOnce}: one sequential stream, nothing mapped, around the page cache where the
 * file system allows), {@code threads} workers widen and quantize the current chunk's rows, row by
 * row, and the calling thread writes the chunk before. The bytes are those of quantizing each whole
 * tensor at once.
 *
 * <p>Working set: three raw chunks ({@code chunkValues} values in the checkpoint's dtype), two
 * quantized chunks, and one fp32 row per worker. A chunk holds at least one row (one head's rows
 * for a RoPE-permuted tensor), so a row longer than {@code chunkValues} still goes through.
 */
final class ChunkedTensorQuantizer implements AutoCloseable {

  /**
   * One tensor to export. Its rows are those of {@code hfNames} one after the other, each holding
   * {@code rows / hfNames.size()} rows: one name for a plain matrix, the experts in order for
   * llama.cpp's stacked {@code ffn_*_exps} (GGML ne {@code [in, out, E]}, i.e. {@code [E*out, in]}
   * quantized row by row). {@code permuteHeads > 0} reorders each head's rows as {@link
   * LlamaGgufExporter#permuteForRope} does (one source only); {@code importance} may be null.
   */
  record Job(
      List<String> hfNames,
      String ggufName,
      long rows,
      int cols,
      GgmlType type,
      int permuteHeads,
      float[] importance) {

    Job {
      hfNames = List.copyOf(hfNames);
      if (hfNames.isEmpty() || rows % hfNames.size() != 0) {
        throw new IllegalArgumentException(
            ggufName + ": " + rows + " rows cannot be split over " + hfNames.size() + " sources");
      }
      if (permuteHeads > 0 && hfNames.size() != 1) {
        throw new IllegalArgumentException(ggufName + ": RoPE permutation of a stacked tensor");
      }
    }

    /** A tensor read from one checkpoint tensor. */
    Job(
        String hfName,
        String ggufName,
        long rows,
        int cols,
        GgmlType type,
        int permuteHeads,
        float[] importance) {
      this(List.of(hfName), ggufName, rows, cols, type, permuteHeads, importance);
    }

    /** Rows of each source tensor. */
    long rowsPerSource() {
      return rows / hfNames.size();
    }
  }

  /** Rows {@code [r0, r1)} of the job, all from source {@code part} (chunks never straddle two). */
  private record Chunk(Job job, int part, long r0, long r1) {

    String hfName() {
      return job.hfNames().get(part);
    }

    /** The first row's index within its source tensor. */
    long sourceRow() {
      return r0 - part * job.rowsPerSource();
    }
  }

  private static final int RAW_SLOTS = 3;

  private final TensorSource source;
  private final int threads;
  private final long chunkValues;
  private final ExecutorService reader;
  private final ExecutorService pool;
  private final ThreadLocal<TensorChunkReader> decoders =
      ThreadLocal.withInitial(() -> new TensorChunkReader(8));
  private final ThreadLocal<float[][]> rows = ThreadLocal.withInitial(() -> new float[1][0]);
  private final ByteBuffer[] raw = new ByteBuffer[RAW_SLOTS];
  private final byte[][] outputs = {new byte[0], new byte[0]};

  ChunkedTensorQuantizer(TensorSource source, int threads, long chunkValues) {
    if (threads < 1 || chunkValues < 1) {
      throw new IllegalArgumentException(
          "threads and chunkValues must be >= 1, found " + threads + " and " + chunkValues);
    }
    this.source = source;
    this.threads = threads;
    this.chunkValues = chunkValues;
    this.reader = Executors.newSingleThreadExecutor(daemons("gguf-read"));
    this.pool = Executors.newFixedThreadPool(threads, daemons("gguf-quantize"));
  }

  private static ThreadFactory daemons(String name) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, name + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /** Quantizes and writes every job in order; the writer's declared tensors must match. */
  void run(List<Job> jobs, GgufWriter w) throws IOException {
    List<Chunk> chunks = new ArrayList<>();
    for (Job j : jobs) {
      int group = rowGroup(j);
      long perChunk = Math.max(1, chunkValues / ((long) j.cols() * group)) * group;
      long per = j.rowsPerSource();
      for (int part = 0; part < j.hfNames().size(); part++) {
        long end = (part + 1) * per;
        for (long r0 = part * per; r0 < end; r0 += perChunk) {
          chunks.add(new Chunk(j, part, r0, Math.min(end, r0 + perChunk)));
        }
      }
    }
    int n = chunks.size();
    List<Future<ByteBuffer>> reads = new ArrayList<>(n);
    for (int k = 0; k < Math.min(n, RAW_SLOTS - 1); k++) {
      reads.add(read(chunks.get(k), k % RAW_SLOTS));
    }
    List<Future<?>> previous = List.of();
    for (int k = 0; k < n; k++) {
      ByteBuffer bytes = get(reads.get(k));
      List<Future<?>> current = quantize(chunks.get(k), bytes, k % 2);
      if (k > 0) {
        await(previous);
        write(w, chunks.get(k - 1), outputs[(k - 1) % 2]);
      }
      // Chunk k-1's raw slot is free now that its quantization is done.
      if (k + RAW_SLOTS - 1 < n) {
        reads.add(read(chunks.get(k + RAW_SLOTS - 1), (k + RAW_SLOTS - 1) % RAW_SLOTS));
      }
      reads.set(k, null);
      previous = current;
    }
    if (n > 0) {
      await(previous);
      write(w, chunks.get(n - 1), outputs[(n - 1) % 2]);
    }
  }

  private static void write(GgufWriter w, Chunk c, byte[] out) throws IOException {
    int len = (int) (c.job().type().bytesFor(c.job().cols()) * (c.r1() - c.r0()));
    w.writeTensorPart(c.job().ggufName(), out, 0, len);
  }

  /** Fetches chunk {@code c}'s raw bytes into raw slot {@code slot} on the reader thread. */
  private Future<ByteBuffer> read(Chunk c, int slot) {
    Job j = c.job();
    String name = c.hfName();
    int width = source.info(name).dtype().bytes();
    long bytes = (c.r1() - c.r0()) * j.cols() * width;
    if (bytes > Integer.MAX_VALUE - 16 - TensorSource.READ_ONCE_SLACK_BYTES) {
      throw new IllegalArgumentException("chunk of " + name + " too large: " + bytes);
    }
    long slack = TensorSource.READ_ONCE_SLACK_BYTES;
    if (raw[slot] == null || raw[slot].capacity() < bytes + slack) {
      long size = Math.min(Integer.MAX_VALUE - 16, Math.max(bytes, chunkValues * width) + slack);
      raw[slot] = ByteBuffer.allocateDirect((int) size);
    }
    ByteBuffer buf = raw[slot];
    return reader.submit(
        () -> source.readRawOnce(name, c.sourceRow() * j.cols() * width, (int) bytes, buf));
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

  /** Splits chunk {@code c} (raw bytes in {@code bytes}) over the workers, into output slot. */
  private List<Future<?>> quantize(Chunk c, ByteBuffer bytes, int slot) {
    Job j = c.job();
    int group = rowGroup(j);
    long rowBytes = j.type().bytesFor(j.cols());
    long size = rowBytes * (c.r1() - c.r0());
    if (size > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("chunk of " + j.ggufName() + " too large: " + size);
    }
    if (outputs[slot].length < size) {
      outputs[slot] = new byte[(int) size];
    }
    byte[] out = outputs[slot];
    DType dtype = source.info(c.hfName()).dtype();
    long groups = (c.r1() - c.r0()) / group;
    List<Future<?>> futures = new ArrayList<>(threads);
    for (int p = 0; p < threads; p++) {
      long g0 = groups * p / threads;
      long g1 = groups * (p + 1) / threads;
      if (g1 == g0) {
        continue;
      }
      int first = (int) (g0 * group);
      int last = (int) (g1 * group);
      futures.add(pool.submit(() -> quantizeRows(j, dtype, group, bytes, first, last, out)));
    }
    return futures;
  }

  /**
   * Rows {@code [first, last)} of the chunk (raw bytes in {@code bytes}) into {@code out}, one row
   * at a time: each row is widened into a row-sized array and quantized while it is still in the L1
   * cache, which is markedly cheaper than widening the whole share first.
   */
  private void quantizeRows(
      Job j, DType dtype, int group, ByteBuffer bytes, int first, int last, byte[] out) {
    int cols = j.cols();
    float[][] holder = rows.get();
    if (holder[0].length < cols) {
      holder[0] = new float[cols];
    }
    float[] x = holder[0];
    TensorChunkReader decoder = decoders.get();
    long rowBytes = j.type().bytesFor(cols);
    int half = group / 2;
    for (int row = first; row < last; row++) {
      int from = row;
      if (j.permuteHeads() > 0) {
        // Output row 2*i + s of a head comes from input row s*half + i of that head.
        int within = row % group;
        from = row - within + (within % 2) * half + within / 2;
      }
      decoder.decode(dtype, bytes.duplicate().position(from * cols * dtype.bytes()), x, 0, cols);
      GgmlQuantizer.quantizeRow(j.type(), x, 0, cols, out, (int) (row * rowBytes), j.importance());
    }
  }

  private static void await(List<Future<?>> futures) throws IOException {
    for (Future<?> f : futures) {
      get(f);
    }
  }

  private static <T> T get(Future<T> f) throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while quantizing", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
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
    reader.shutdownNow();
    pool.shutdownNow();
  }
}
