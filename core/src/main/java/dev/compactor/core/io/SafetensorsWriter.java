package dev.compactor.core.io;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a model's weights as safetensors into a directory, one tensor at a time, so that a stage
 * can stream a model larger than RAM from a {@link TensorSource} to disk.
 *
 * <p>Tensor bytes go straight to a temporary data file per shard; only the current tensor is in the
 * heap. When a shard would grow past {@code maxShardBytes} (a tensor bigger than that gets a shard
 * of its own) or the writer closes, the shard is assembled: the 8-byte header length, the JSON
 * header padded with spaces so that the data starts at a multiple of 8, then the data copied with
 * {@link FileChannel#transferTo}. On {@link #close()} a single shard becomes {@code
 * model.safetensors}; several become {@code model-00001-of-0000N.safetensors} plus {@code
 * model.safetensors.index.json} ({@code metadata.total_size}, {@code weight_map}), the layout
 * Hugging Face {@code save_pretrained} produces. {@code __metadata__} goes into every shard; {@code
 * "format": "pt"} is added unless given, because transformers refuses safetensors files without it.
 *
 * <p>A writer made with {@link #planned} knows every tensor up front, so each shard's header is
 * written first and the tensor bytes go straight into the shard: one write of the data instead of
 * two, with byte-identical files. The tensors must then arrive in the plan's order.
 *
 * <p>After a failed write, {@link #close()} deletes the partial output instead of publishing it.
 */
public final class SafetensorsWriter implements AutoCloseable {

  /** One tensor of a {@link #planned} writer, in the order it will be written. */
  public record Planned(String name, DType dtype, long[] shape) {
    long bytes() {
      long n = dtype.bytes();
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      return n;
    }
  }

  private static final Logger LOG = LoggerFactory.getLogger(SafetensorsWriter.class);
  private static final int CHUNK_ELEMENTS = 16 * 1024;

  private final Path dir;
  private final long maxShardBytes;
  private final Map<String, String> metadata;
  private final Set<String> written = new HashSet<>();
  private final List<Path> finishedShards = new ArrayList<>();
  private final List<List<TensorInfo>> finishedEntries = new ArrayList<>();
  private final ByteBuffer chunk =
      ByteBuffer.allocateDirect(CHUNK_ELEMENTS * 4).order(ByteOrder.LITTLE_ENDIAN);
  private List<TensorInfo> entries = new ArrayList<>();
  private Path dataFile;
  private FileChannel data;
  private long shardBytes;
  private long totalBytes;
  private boolean failed;
  private boolean closed;
  private List<Planned> plan;
  private int planned;
  private int[] shardOf;
  private List<List<TensorInfo>> plannedShards;

  /**
   * @param dir output directory (created if missing); must not already hold weights
   * @param maxShardBytes data bytes per shard before a new one starts ({@code Long.MAX_VALUE}: one
   *     file)
   * @param metadata the {@code __metadata__} strings for every shard
   */
  public SafetensorsWriter(Path dir, long maxShardBytes, Map<String, String> metadata)
      throws IOException {
    if (maxShardBytes <= 0) {
      throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
    }
    this.dir = dir;
    this.maxShardBytes = maxShardBytes;
    Map<String, String> m = new LinkedHashMap<>();
    m.put("format", "pt");
    m.putAll(metadata);
    this.metadata = Collections.unmodifiableMap(m);
    Files.createDirectories(dir);
    for (String existing : List.of(Checkpoints.SINGLE, Checkpoints.INDEX)) {
      if (Files.exists(dir.resolve(existing))) {
        throw new IOException(dir.resolve(existing) + " already exists; refusing to mix models");
      }
    }
  }

  /**
   * A writer that knows every tensor in advance ({@code plan}, in writing order): shards are cut
   * where the unplanned writer would cut them and each shard's data is written once, after its
   * header, instead of through a temporary file.
   */
  public static SafetensorsWriter planned(
      Path dir, long maxShardBytes, Map<String, String> metadata, List<Planned> plan)
      throws IOException {
    SafetensorsWriter w = new SafetensorsWriter(dir, maxShardBytes, metadata);
    w.plan = List.copyOf(plan);
    w.shardOf = new int[plan.size()];
    w.plannedShards = new ArrayList<>();
    List<TensorInfo> shard = null;
    long offset = 0;
    for (int i = 0; i < plan.size(); i++) {
      Planned p = plan.get(i);
      long length = p.bytes();
      // the unplanned writer's rule: a new shard when this tensor would overflow a non-empty one
      if (shard == null || (offset > 0 && offset + length > maxShardBytes)) {
        shard = new ArrayList<>();
        w.plannedShards.add(shard);
        offset = 0;
      }
      shard.add(new TensorInfo(p.name(), p.dtype(), p.shape(), offset, offset + length));
      offset += length;
      w.shardOf[i] = w.plannedShards.size() - 1;
    }
    return w;
  }

  /** A writer producing a single {@code model.safetensors}. */
  public SafetensorsWriter(Path dir, Map<String, String> metadata) throws IOException {
    this(dir, Long.MAX_VALUE, metadata);
  }

  /** Writes {@code values} (row-major, shape {@code shape}) stored as F32, F16 or BF16. */
  public void write(String name, DType storeAs, long[] shape, float[] values) throws IOException {
    if (storeAs != DType.F32 && storeAs != DType.F16 && storeAs != DType.BF16) {
      throw new IllegalArgumentException(
          "tensor '" + name + "': can store fp32 values as F32, F16 or BF16, not " + storeAs);
    }
    long numel = checkNewTensor(name, shape);
    if (numel != values.length) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': shape "
              + Arrays.toString(shape)
              + " has "
              + numel
              + " elements, got "
              + values.length
              + " values");
    }
    long length = numel * storeAs.bytes();
    FileChannel ch = beginTensor(name, storeAs, shape, length);
    try {
      for (int off = 0; off < values.length; off += CHUNK_ELEMENTS) {
        int n = Math.min(CHUNK_ELEMENTS, values.length - off);
        chunk.clear();
        switch (storeAs) {
          case F32 -> chunk.asFloatBuffer().put(values, off, n);
          case F16 -> Fp16.fromFloats(values, off, n, chunk);
          default -> Bf16.fromFloats(values, off, n, chunk);
        }
        chunk.position(0).limit(n * storeAs.bytes());
        writeFully(ch, chunk);
      }
    } catch (IOException | RuntimeException e) {
      failed = true;
      throw e;
    }
    endTensor(name, storeAs, shape, length);
  }

  /** Writes a tensor's little-endian bytes as they are (the remaining bytes of {@code bytes}). */
  public void writeRaw(String name, DType dtype, long[] shape, ByteBuffer bytes)
      throws IOException {
    long numel = checkNewTensor(name, shape);
    long length = Math.multiplyExact(numel, dtype.bytes());
    if (bytes.remaining() != length) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': "
              + dtype
              + Arrays.toString(shape)
              + " needs "
              + length
              + " bytes, got "
              + bytes.remaining());
    }
    FileChannel ch = beginTensor(name, dtype, shape, length);
    try {
      writeFully(ch, bytes.duplicate());
    } catch (IOException | RuntimeException e) {
      failed = true;
      throw e;
    }
    endTensor(name, dtype, shape, length);
  }

  /** Copies tensor {@code name} from {@code source} without converting it. */
  public void copy(TensorSource source, String name) throws IOException {
    TensorInfo t = source.info(name);
    writeRaw(name, t.dtype(), t.shape(), source.raw(name));
  }

  private long checkNewTensor(String name, long[] shape) {
    if (closed) {
      throw new IllegalStateException("writer for " + dir + " is closed");
    }
    if (failed) {
      throw new IllegalStateException(
          "an earlier write to " + dir + " failed; close() discards the partial output");
    }
    if (name == null
        || name.isEmpty()
        || name.length() > SafetensorsHeader.MAX_NAME_LENGTH
        || name.equals(SafetensorsHeader.METADATA_KEY)
        || name.chars().anyMatch(Character::isISOControl)) {
      throw new IllegalArgumentException("invalid tensor name '" + name + "'");
    }
    if (written.contains(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' was already written");
    }
    if (shape.length > SafetensorsHeader.MAX_RANK) {
      throw new IllegalArgumentException("tensor '" + name + "': rank " + shape.length + " > 8");
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': negative dimension in " + Arrays.toString(shape));
      }
      numel = Math.multiplyExact(numel, d);
    }
    return numel;
  }

  private FileChannel beginTensor(String name, DType dtype, long[] shape, long length)
      throws IOException {
    if (plan != null) {
      return beginPlanned(name, dtype, shape);
    }
    if (data != null && shardBytes > 0 && shardBytes + length > maxShardBytes) {
      finishShard();
    }
    if (data == null) {
      dataFile = dir.resolve(".shard-" + (finishedShards.size() + 1) + ".data.tmp");
      data =
          FileChannel.open(
              dataFile,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.READ,
              StandardOpenOption.WRITE);
      shardBytes = 0;
    }
    return data;
  }

  /** The planned shard's file, opened with its header written, or the current one. */
  private FileChannel beginPlanned(String name, DType dtype, long[] shape) throws IOException {
    Planned next = planned < plan.size() ? plan.get(planned) : null;
    if (next == null
        || !next.name().equals(name)
        || next.dtype() != dtype
        || !Arrays.equals(next.shape(), shape)) {
      failed = true;
      throw new IllegalStateException(
          "tensor '"
              + name
              + "' "
              + dtype
              + Arrays.toString(shape)
              + " does not follow the plan: expected "
              + (next == null
                  ? "no more tensors"
                  : "'" + next.name() + "' " + next.dtype() + Arrays.toString(next.shape())));
    }
    int shard = shardOf[planned];
    if (data != null && shard != finishedShards.size()) {
      finishShard();
    }
    if (data == null) {
      openPlannedShard(shard);
    }
    planned++;
    return data;
  }

  /** Opens shard {@code shard}'s file and writes its header, computed from the plan. */
  private void openPlannedShard(int shard) throws IOException {
    dataFile = dir.resolve(".shard-" + (shard + 1) + ".safetensors.tmp");
    data =
        FileChannel.open(
            dataFile,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE);
    List<TensorInfo> infos = plannedShards.isEmpty() ? List.of() : plannedShards.get(shard);
    byte[] header = header(infos, metadata);
    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    len.putLong(0, header.length);
    writeFully(data, len);
    writeFully(data, ByteBuffer.wrap(header));
    shardBytes = 0;
  }

  private void endTensor(String name, DType dtype, long[] shape, long length) {
    written.add(name);
    entries.add(new TensorInfo(name, dtype, shape, shardBytes, shardBytes + length));
    shardBytes += length;
    totalBytes += length;
  }

  /** Header + data of the current shard into {@code .shard-i.safetensors.tmp}. */
  private void finishShard() throws IOException {
    if (plan != null) {
      data.close();
      data = null;
      finishedShards.add(dataFile);
      finishedEntries.add(entries);
      entries = new ArrayList<>();
      return;
    }
    Path out = dir.resolve(".shard-" + (finishedShards.size() + 1) + ".safetensors.tmp");
    byte[] header = header(entries, metadata);
    try (FileChannel dst =
        FileChannel.open(
            out,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      len.putLong(0, header.length);
      writeFully(dst, len);
      writeFully(dst, ByteBuffer.wrap(header));
      long pos = 0;
      while (pos < shardBytes) {
        pos += data.transferTo(pos, shardBytes - pos, dst);
      }
    } catch (IOException | RuntimeException e) {
      failed = true;
      throw e;
    } finally {
      data.close();
      Files.deleteIfExists(dataFile);
      data = null;
    }
    finishedShards.add(out);
    finishedEntries.add(entries);
    entries = new ArrayList<>();
  }

  /** The JSON header, space-padded so that 8 + its length is a multiple of 8. */
  static byte[] header(List<TensorInfo> entries, Map<String, String> metadata) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (JsonGenerator g = JsonLimits.HEADER.createGenerator(bytes)) {
      g.writeStartObject();
      if (!metadata.isEmpty()) {
        g.writeObjectFieldStart(SafetensorsHeader.METADATA_KEY);
        for (Map.Entry<String, String> e : metadata.entrySet()) {
          g.writeStringField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
      }
      for (TensorInfo t : entries) {
        g.writeObjectFieldStart(t.name());
        g.writeStringField("dtype", t.dtype().safetensorsName());
        long[] shape = t.shape();
        g.writeFieldName("shape");
        g.writeArray(shape, 0, shape.length);
        g.writeFieldName("data_offsets");
        g.writeArray(new long[] {t.begin(), t.end()}, 0, 2);
        g.writeEndObject();
      }
      g.writeEndObject();
    }
    int pad = (8 - bytes.size() % 8) % 8;
    for (int i = 0; i < pad; i++) {
      bytes.write(' ');
    }
    return bytes.toByteArray();
  }

  private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  /**
   * Finishes the last shard and moves the shards to their final names, writing the index when there
   * are several. After a failed write it deletes the partial output instead.
   */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    if (failed) {
      abort();
      return;
    }
    try {
      if (plan != null && planned < plan.size()) {
        throw new IllegalStateException(
            "closed after "
                + planned
                + " of "
                + plan.size()
                + " planned tensors; missing '"
                + plan.get(planned).name()
                + "'");
      }
      if (data == null && finishedShards.isEmpty()) {
        if (plan != null) {
          openPlannedShard(0);
        } else {
          beginTensor("", DType.F32, new long[0], 0); // no tensors: a valid empty file
        }
      }
      if (data != null) {
        finishShard();
      }
      int n = finishedShards.size();
      if (n == 1) {
        Files.move(
            finishedShards.get(0), dir.resolve(Checkpoints.SINGLE), StandardCopyOption.ATOMIC_MOVE);
        return;
      }
      Map<String, String> weightMap = new LinkedHashMap<>();
      for (int i = 0; i < n; i++) {
        String name = String.format("model-%05d-of-%05d.safetensors", i + 1, n);
        Files.move(finishedShards.get(i), dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
        for (TensorInfo t : finishedEntries.get(i)) {
          weightMap.put(t.name(), name);
        }
      }
      writeIndex(weightMap);
      LOG.debug("wrote {} shards, {} bytes of tensors, to {}", n, totalBytes, dir);
    } catch (IOException | RuntimeException e) {
      abort();
      throw e;
    }
  }

  private void writeIndex(Map<String, String> weightMap) throws IOException {
    ObjectNode root = JsonLimits.DOCUMENT.createObjectNode();
    root.putObject("metadata").put("total_size", totalBytes);
    ObjectNode map = root.putObject("weight_map");
    weightMap.forEach(map::put);
    Path tmp = dir.resolve(".index.json.tmp");
    Files.write(
        tmp,
        JsonLimits.DOCUMENT
            .writerWithDefaultPrettyPrinter()
            .writeValueAsString(root)
            .getBytes(StandardCharsets.UTF_8));
    Files.move(tmp, dir.resolve(Checkpoints.INDEX), StandardCopyOption.ATOMIC_MOVE);
  }

  private void abort() throws IOException {
    if (data != null) {
      data.close();
      data = null;
    }
    if (dataFile != null) {
      Files.deleteIfExists(dataFile);
    }
    for (Path p : finishedShards) {
      Files.deleteIfExists(p);
    }
    LOG.warn("discarded partial safetensors output in {}", dir);
  }

  /** Data bytes written so far (sum of tensor sizes). */
  public long totalBytes() {
    return totalBytes;
  }
}
