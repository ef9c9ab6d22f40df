package dev.compactor.core.distill;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The teacher's top-k next-token log-probabilities (temperature 1) and token ids for every position
 * of every window, computed once and read back on every step instead of a teacher pass.
 *
 * <p>File layout (little-endian), 128-byte header then the payload:
 *
 * <pre>
 *   0   8  magic "CPTOPK01"
 *   8   4  version (1)
 *   12  4  k
 *   16  4  windows
 *   20  4  seq (positions per window)
 *   24  4  vocab
 *   28  4  reserved (0)
 *   32 32  SHA-256 of the teacher identity (its weights and config)
 *   64 32  SHA-256 of the windows (count, length, every token id)
 *   96  8  CRC-32 of the payload
 *   104 24 reserved (0)
 *   128 .. per window, per position: k float32 log-probs (descending), then k int32 token ids
 * </pre>
 *
 * A file whose header does not match the run (another teacher, other windows, another k), whose
 * size is wrong or whose payload fails the CRC is never used: it is recomputed, with a warning.
 * Building streams the windows in batches and writes them as it goes (memory bounded by one batch),
 * into a temporary file moved into place at the end, so a crash leaves no half cache.
 */
public final class TeacherTopKCache implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(TeacherTopKCache.class);
  static final byte[] MAGIC = "CPTOPK01".getBytes(StandardCharsets.US_ASCII);
  static final int VERSION = 1;
  static final int HEADER_BYTES = 128;

  private final FileChannel channel;
  private final int k;
  private final int windows;
  private final int seq;

  private TeacherTopKCache(FileChannel channel, int k, int windows, int seq) {
    this.channel = channel;
    this.k = k;
    this.windows = windows;
    this.seq = seq;
  }

  /**
   * Opens {@code file} if it holds the top-{@code k} of this teacher ({@code teacherId}) on these
   * windows, else computes it with {@code teacher} in batches of {@code batchSize} windows and
   * opens the result. Each window holds {@code seq + 1} ids; positions {@code 0..seq-1} are read.
   */
  public static TeacherTopKCache openOrBuild(
      Path file, CausalLM teacher, String teacherId, List<int[]> windows, int k, int batchSize)
      throws IOException {
    return openOrBuild(file, teacher, teacherId, windows, k, batchSize, Device.cpu());
  }

  /** As above, running the teacher's passes on {@code device} (the teacher's). */
  public static TeacherTopKCache openOrBuild(
      Path file,
      CausalLM teacher,
      String teacherId,
      List<int[]> windows,
      int k,
      int batchSize,
      Device device)
      throws IOException {
    int vocab = teacher.vocabSize();
    if (k < 1 || k > vocab) {
      throw new IllegalArgumentException(
          "teacher top-k must be in [1, vocab = " + vocab + "], found " + k);
    }
    int seq = windows.get(0).length - 1;
    byte[] header = header(k, windows.size(), seq, vocab, sha256(teacherId), windowsHash(windows));
    if (Files.exists(file)) {
      String problem = check(file, header);
      if (problem == null) {
        LOG.info("reusing the teacher's top-{} cache {}", k, file);
        return open(file, k, windows.size(), seq);
      }
      LOG.warn("teacher top-k cache {} not used ({}); recomputing it", file, problem);
    }
    build(file, teacher, windows, k, batchSize, header, device);
    return open(file, k, windows.size(), seq);
  }

  /**
   * The identity of a model directory: SHA-256 over its config.json and every safetensors file (in
   * name order), so a cache is bound to the exact weights.
   */
  public static String teacherId(Path modelDir) throws IOException {
    MessageDigest digest = newDigest();
    List<Path> files;
    try (Stream<Path> list = Files.list(modelDir)) {
      files =
          list.filter(
                  p -> {
                    String n = p.getFileName().toString();
                    return n.equals("config.json") || n.endsWith(".safetensors");
                  })
              .sorted()
              .toList();
    }
    byte[] buffer = new byte[1 << 20];
    for (Path f : files) {
      digest.update(f.getFileName().toString().getBytes(StandardCharsets.UTF_8));
      try (var in = Files.newInputStream(f)) {
        for (int n; (n = in.read(buffer)) > 0; ) {
          digest.update(buffer, 0, n);
        }
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  public int k() {
    return k;
  }

  /** Top-k log-probs and token ids of {@code batch}'s windows, {@code [batch, seq, k]} each. */
  public NDList read(NDManager m, int[] batch) throws IOException {
    int record = seq * k;
    float[] logProbs = new float[batch.length * record];
    int[] ids = new int[batch.length * record];
    ByteBuffer buf = ByteBuffer.allocate(record * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int b = 0; b < batch.length; b++) {
      int w = batch[b];
      if (w < 0 || w >= windows) {
        throw new IllegalArgumentException("window " + w + " is outside the cache's " + windows);
      }
      buf.clear();
      long at = HEADER_BYTES + (long) w * record * 8;
      while (buf.hasRemaining()) {
        if (channel.read(buf, at + buf.position()) < 0) {
          throw new IOException("teacher top-k cache ends inside window " + w);
        }
      }
      buf.flip();
      for (int p = 0; p < seq; p++) {
        int off = b * record + p * k;
        for (int i = 0; i < k; i++) {
          logProbs[off + i] = buf.getFloat();
        }
        for (int i = 0; i < k; i++) {
          ids[off + i] = buf.getInt();
        }
      }
    }
    Shape shape = new Shape(batch.length, seq, k);
    return new NDList(m.create(logProbs, shape), m.create(ids, shape));
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      LOG.warn("closing the teacher top-k cache: {}", e.getMessage());
    }
  }

  private static TeacherTopKCache open(Path file, int k, int windows, int seq) throws IOException {
    return new TeacherTopKCache(FileChannel.open(file, StandardOpenOption.READ), k, windows, seq);
  }

  private static void build(
      Path file,
      CausalLM teacher,
      List<int[]> windows,
      int k,
      int batchSize,
      byte[] header,
      Device device)
      throws IOException {
    int seq = windows.get(0).length - 1;
    Path dir = file.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".part");
    long started = System.nanoTime();
    CRC32 crc = new CRC32();
    try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE);
        NDManager root = NDManager.newBaseManager(device)) {
      out.position(HEADER_BYTES);
      for (int start = 0; start < windows.size(); start += batchSize) {
        int n = Math.min(batchSize, windows.size() - start);
        int[] inputs = new int[n * seq];
        for (int b = 0; b < n; b++) {
          System.arraycopy(windows.get(start + b), 0, inputs, b * seq, seq);
        }
        float[] values;
        int[] ids;
        try (NDManager m = root.newSubManager()) {
          NDArray logits = teacher.logits(m, m.create(inputs, new Shape(n, seq)));
          NDList top = logits.logSoftmax(2).topK(k, 2, true, true);
          values = top.get(0).toFloatArray();
          ids = top.get(1).toType(DataType.INT32, false).toIntArray();
        }
        ByteBuffer buf = ByteBuffer.allocate(n * seq * k * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < n * seq; p++) {
          for (int i = 0; i < k; i++) {
            buf.putFloat(values[p * k + i]);
          }
          for (int i = 0; i < k; i++) {
            buf.putInt(ids[p * k + i]);
          }
        }
        buf.flip();
        crc.update(buf.duplicate());
        while (buf.hasRemaining()) {
          out.write(buf);
        }
      }
      ByteBuffer h = ByteBuffer.wrap(header.clone()).order(ByteOrder.LITTLE_ENDIAN);
      h.putLong(96, crc.getValue());
      out.write(h, 0);
      out.force(true);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    LOG.info(
        "cached the teacher's top-{} log-probs of {} windows in {} ({} MiB, {} s)",
        k,
        windows.size(),
        file,
        String.format("%.1f", Files.size(file) / 1048576.0),
        String.format("%.1f", (System.nanoTime() - started) / 1e9));
  }

  /** Why {@code file} cannot be used for a run whose header is {@code expected}; null if it can. */
  static String check(Path file, byte[] expected) throws IOException {
    ByteBuffer want = ByteBuffer.wrap(expected).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer h = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
      while (h.hasRemaining() && in.read(h) > 0) {}
      if (h.hasRemaining()) {
        return "shorter than its header";
      }
      h.flip();
      byte[] magic = new byte[MAGIC.length];
      h.get(0, magic);
      if (!Arrays.equals(magic, MAGIC)) {
        return "magic is not CPTOPK01";
      }
      if (h.getInt(8) != VERSION) {
        return "version " + h.getInt(8) + ", expected " + VERSION;
      }
      String[] names = {"k", "windows", "seq", "vocab"};
      for (int i = 0; i < names.length; i++) {
        int at = 12 + 4 * i;
        if (h.getInt(at) != want.getInt(at)) {
          return names[i] + " " + h.getInt(at) + ", expected " + want.getInt(at);
        }
      }
      if (!Arrays.equals(slice(h, 32), slice(want, 32))) {
        return "made with another teacher";
      }
      if (!Arrays.equals(slice(h, 64), slice(want, 64))) {
        return "made on other windows";
      }
      long payload = (long) want.getInt(16) * want.getInt(20) * want.getInt(12) * 8;
      if (in.size() != HEADER_BYTES + payload) {
        return "size " + in.size() + " bytes, expected " + (HEADER_BYTES + payload);
      }
      CRC32 crc = new CRC32();
      ByteBuffer chunk = ByteBuffer.allocate(1 << 20);
      in.position(HEADER_BYTES);
      while (in.read(chunk) > 0) {
        chunk.flip();
        crc.update(chunk);
        chunk.clear();
      }
      if (crc.getValue() != h.getLong(96)) {
        return "payload CRC mismatch (corrupt)";
      }
      return null;
    }
  }

  static byte[] header(
      int k, int windows, int seq, int vocab, byte[] teacherHash, byte[] windowsHash) {
    ByteBuffer h = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    h.put(MAGIC).putInt(VERSION).putInt(k).putInt(windows).putInt(seq).putInt(vocab).putInt(0);
    h.put(teacherHash).put(windowsHash);
    return h.array();
  }

  static byte[] windowsHash(List<int[]> windows) {
    MessageDigest digest = newDigest();
    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(windows.size()).putInt(windows.get(0).length);
    digest.update(b.array());
    for (int[] w : windows) {
      ByteBuffer wb = ByteBuffer.allocate(w.length * 4).order(ByteOrder.LITTLE_ENDIAN);
      wb.asIntBuffer().put(w);
      digest.update(wb.array());
    }
    return digest.digest();
  }

  private static byte[] sha256(String s) {
    return newDigest().digest(s.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] slice(ByteBuffer b, int at) {
    byte[] out = new byte[32];
    b.get(at, out);
    return out;
  }

  private static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM lacks SHA-256", e);
    }
  }
}
