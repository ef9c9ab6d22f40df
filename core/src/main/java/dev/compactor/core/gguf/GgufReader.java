package dev.compactor.core.gguf;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads and validates a GGUF file (layout in {@link GgufWriter}): header, metadata, tensor infos,
 * and tensor data on demand. Every header field is checked and a {@link GgufFormatException} says
 * what was expected and what was found, so a truncated or foreign file fails with a clear message
 * instead of garbage. Versions 2 and 3 are accepted (same layout).
 */
public final class GgufReader implements Closeable {

  private static final int MAX_DIMS = 4;

  private final FileChannel channel;
  private final long fileSize;
  private final int version;
  private final Map<String, GgufValue> metadata;
  private final List<GgufTensorInfo> tensors;
  private final Map<String, GgufTensorInfo> byName;
  private final int alignment;
  private final long dataOffset;

  private GgufReader(FileChannel channel) throws IOException {
    this.channel = channel;
    this.fileSize = channel.size();
    Cursor c = new Cursor(channel, fileSize);
    int magic = c.i32("magic");
    if (magic != GgufWriter.MAGIC) {
      throw new GgufFormatException(
          String.format(
              "not a GGUF file: expected magic 'GGUF' (0x%08x), found 0x%08x",
              GgufWriter.MAGIC, magic));
    }
    version = c.i32("version");
    if (version != 2 && version != 3) {
      throw new GgufFormatException("unsupported GGUF version: expected 2 or 3, found " + version);
    }
    long nTensors = c.i64("tensor_count");
    long nKv = c.i64("metadata_kv_count");
    // Each tensor info takes at least 8+1+4+8+4+8 bytes and each pair at least 8+1+4+1.
    if (nTensors < 0 || nTensors > fileSize / 33) {
      throw new GgufFormatException(
          "tensor_count " + nTensors + " impossible for a file of " + fileSize + " bytes");
    }
    if (nKv < 0 || nKv > fileSize / 14) {
      throw new GgufFormatException(
          "metadata_kv_count " + nKv + " impossible for a file of " + fileSize + " bytes");
    }
    Map<String, GgufValue> md = new LinkedHashMap<>();
    for (long i = 0; i < nKv; i++) {
      String key = c.string("metadata key #" + i);
      int typeId = c.i32("type of " + key);
      GgufValueType type = GgufValueType.fromId(typeId);
      if (type == null) {
        throw new GgufFormatException(
            "metadata " + key + ": unknown value type " + typeId + " (expected 0..12)");
      }
      GgufValue v = readValue(c, key, type);
      if (md.put(key, v) != null) {
        throw new GgufFormatException("duplicate metadata key " + key);
      }
    }
    metadata = Collections.unmodifiableMap(md);
    GgufValue align = md.get(GgufWriter.ALIGNMENT_KEY);
    if (align == null) {
      alignment = GgufWriter.DEFAULT_ALIGNMENT;
    } else {
      if (align.type() != GgufValueType.UINT32) {
        throw new GgufFormatException(
            GgufWriter.ALIGNMENT_KEY + ": expected UINT32, found " + align.type());
      }
      long a = align.asLong();
      if (a <= 0 || Long.bitCount(a) != 1) {
        throw new GgufFormatException(
            GgufWriter.ALIGNMENT_KEY + ": expected a power of two, found " + a);
      }
      alignment = (int) a;
    }
    List<GgufTensorInfo> ts = new ArrayList<>();
    Map<String, GgufTensorInfo> names = new LinkedHashMap<>();
    for (long i = 0; i < nTensors; i++) {
      String name = c.string("tensor name #" + i);
      int nDims = c.i32("n_dims of " + name);
      if (nDims < 1 || nDims > MAX_DIMS) {
        throw new GgufFormatException(
            "tensor " + name + ": expected 1.." + MAX_DIMS + " dims, found " + nDims);
      }
      long[] shape = new long[nDims];
      for (int d = 0; d < nDims; d++) {
        long ne = c.i64("ne[" + d + "] of " + name);
        if (ne < 0 || ne > Integer.MAX_VALUE * 64L) {
          throw new GgufFormatException("tensor " + name + ": dimension " + d + " is " + ne);
        }
        shape[nDims - 1 - d] = ne;
      }
      int typeId = c.i32("type of " + name);
      GgmlType type;
      try {
        type = GgmlType.fromId(typeId);
      } catch (IllegalArgumentException e) {
        throw new GgufFormatException(
            "tensor "
                + name
                + ": ggml type "
                + typeId
                + " is not supported (expected one of F32, F16, Q4_0, Q8_0, Q4_K, Q6_K)");
      }
      long offset = c.i64("offset of " + name);
      if (!type.fitsRowLength(shape[nDims - 1])) {
        throw new GgufFormatException(
            "tensor "
                + name
                + ": row length "
                + shape[nDims - 1]
                + " is not a multiple of the "
                + type
                + " block size "
                + type.blockSize());
      }
      if (offset < 0 || offset % alignment != 0) {
        throw new GgufFormatException(
            "tensor "
                + name
                + ": offset "
                + offset
                + " is not a multiple of the alignment "
                + alignment);
      }
      GgufTensorInfo info;
      try {
        info = new GgufTensorInfo(name, shape, type, offset);
        info.byteSize();
      } catch (ArithmeticException e) {
        throw new GgufFormatException("tensor " + name + ": shape overflows");
      }
      if (names.put(name, info) != null) {
        throw new GgufFormatException("duplicate tensor name " + name);
      }
      ts.add(info);
    }
    long afterInfos = c.position();
    dataOffset = (afterInfos + alignment - 1) / alignment * alignment;
    List<GgufTensorInfo> sorted = new ArrayList<>(ts);
    sorted.sort(Comparator.comparingLong(GgufTensorInfo::offset));
    long end = 0;
    for (GgufTensorInfo t : sorted) {
      if (t.offset() < end) {
        throw new GgufFormatException(
            "tensor "
                + t.name()
                + " at offset "
                + t.offset()
                + " overlaps the previous tensor, which ends at "
                + end);
      }
      end = t.offset() + t.byteSize();
      if (dataOffset + end > fileSize) {
        throw new GgufFormatException(
            "tensor "
                + t.name()
                + " needs bytes up to "
                + (dataOffset + end)
                + " but the file has "
                + fileSize
                + " (truncated?)");
      }
    }
    tensors = List.copyOf(ts);
    byName = Collections.unmodifiableMap(names);
  }

  /** Opens and validates {@code path}; the tensor data is read later, on demand. */
  public static GgufReader open(Path path) throws IOException {
    FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
    try {
      return new GgufReader(ch);
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
  }

  public int version() {
    return version;
  }

  public Map<String, GgufValue> metadata() {
    return metadata;
  }

  /** The value of {@code key}; throws {@link GgufFormatException} when it is absent. */
  public GgufValue require(String key) throws GgufFormatException {
    GgufValue v = metadata.get(key);
    if (v == null) {
      throw new GgufFormatException("metadata key " + key + " is missing");
    }
    return v;
  }

  public List<GgufTensorInfo> tensors() {
    return tensors;
  }

  /** The info of {@code name}; throws {@link IllegalArgumentException} if absent. */
  public GgufTensorInfo tensor(String name) {
    GgufTensorInfo t = byName.get(name);
    if (t == null) {
      throw new IllegalArgumentException("no tensor " + name + " in this GGUF file");
    }
    return t;
  }

  public int alignment() {
    return alignment;
  }

  /** Absolute file offset of the data section. */
  public long dataOffset() {
    return dataOffset;
  }

  /** The stored bytes of {@code name}. */
  public byte[] readTensorBytes(String name) throws IOException {
    GgufTensorInfo t = tensor(name);
    long size = t.byteSize();
    if (size > Integer.MAX_VALUE - 16) {
      throw new UnsupportedOperationException(
          "not supported yet: reading a tensor over 2 GiB into one array: " + name);
    }
    ByteBuffer b = ByteBuffer.allocate((int) size);
    long pos = dataOffset + t.offset();
    while (b.hasRemaining()) {
      int n = channel.read(b, pos);
      if (n < 0) {
        throw new EOFException("end of file inside tensor " + name);
      }
      pos += n;
    }
    return b.array();
  }

  /** The values of {@code name}, dequantized to fp32, row-major. */
  public float[] readTensorFloats(String name) throws IOException {
    GgufTensorInfo t = tensor(name);
    return GgmlQuantizer.dequantize(t.type(), readTensorBytes(name), Math.toIntExact(t.numel()));
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  private static GgufValue readValue(Cursor c, String key, GgufValueType type) throws IOException {
    if (type == GgufValueType.ARRAY) {
      int elemId = c.i32("array type of " + key);
      GgufValueType elem = GgufValueType.fromId(elemId);
      if (elem == null) {
        throw new GgufFormatException("metadata " + key + ": unknown array element type " + elemId);
      }
      if (elem == GgufValueType.ARRAY) {
        throw new GgufFormatException(
            "metadata " + key + ": nested arrays are not supported by this reader");
      }
      long n = c.i64("array length of " + key);
      long minBytes = elem.size() > 0 ? elem.size() : 8;
      if (n < 0 || n > c.remaining() / minBytes) {
        throw new GgufFormatException(
            "metadata "
                + key
                + ": array length "
                + n
                + " exceeds the "
                + c.remaining()
                + " bytes left in the file");
      }
      List<Object> list = new ArrayList<>((int) n);
      for (long i = 0; i < n; i++) {
        list.add(readScalar(c, key, elem));
      }
      return GgufValue.array(elem, list);
    }
    return new GgufValue(type, null, readScalar(c, key, type));
  }

  private static Object readScalar(Cursor c, String key, GgufValueType type) throws IOException {
    return switch (type) {
      case UINT8 -> c.u8(key) & 0xff;
      case INT8 -> (int) (byte) c.u8(key);
      case UINT16 -> c.i16(key) & 0xffff;
      case INT16 -> (int) (short) c.i16(key);
      case UINT32 -> c.i32(key) & 0xffffffffL;
      case INT32 -> c.i32(key);
      case UINT64, INT64 -> c.i64(key);
      case FLOAT32 -> Float.intBitsToFloat(c.i32(key));
      case FLOAT64 -> Double.longBitsToDouble(c.i64(key));
      case BOOL -> {
        int b = c.u8(key);
        if (b > 1) {
          throw new GgufFormatException("metadata " + key + ": bool must be 0 or 1, found " + b);
        }
        yield b == 1;
      }
      case STRING -> c.string(key);
      case ARRAY -> throw new IllegalStateException("arrays are read by readValue");
    };
  }

  /** Sequential little-endian reads over the channel with a refilled buffer. */
  private static final class Cursor {
    private final FileChannel ch;
    private final long size;
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
    private long bufStart;

    Cursor(FileChannel ch, long size) {
      this.ch = ch;
      this.size = size;
      buf.limit(0);
    }

    long position() {
      return bufStart + buf.position();
    }

    long remaining() {
      return size - position();
    }

    private void need(int n, String what) throws IOException {
      if (remaining() < n) {
        throw new GgufFormatException(
            "file ends while reading "
                + what
                + ": need "
                + n
                + " bytes at offset "
                + position()
                + ", file has "
                + size);
      }
      if (buf.remaining() < n) {
        long pos = position();
        buf.clear();
        bufStart = pos;
        while (buf.position() < Math.min(buf.capacity(), size - pos)) {
          if (ch.read(buf, pos + buf.position()) < 0) {
            break;
          }
        }
        buf.flip();
      }
    }

    int u8(String what) throws IOException {
      need(1, what);
      return buf.get() & 0xff;
    }

    int i16(String what) throws IOException {
      need(2, what);
      return buf.getShort();
    }

    int i32(String what) throws IOException {
      need(4, what);
      return buf.getInt();
    }

    long i64(String what) throws IOException {
      need(8, what);
      return buf.getLong();
    }

    String string(String what) throws IOException {
      long len = i64("length of " + what);
      if (len < 0 || len > remaining()) {
        throw new GgufFormatException(
            "string " + what + ": length " + len + " exceeds the " + remaining() + " bytes left");
      }
      byte[] b = new byte[(int) len];
      int done = 0;
      while (done < len) {
        int chunk = (int) Math.min(len - done, buf.capacity());
        need(chunk, what);
        buf.get(b, done, chunk);
        done += chunk;
      }
      try {
        return StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(b))
            .toString();
      } catch (CharacterCodingException e) {
        throw new GgufFormatException("string " + what + " is not valid UTF-8");
      }
    }
  }
}
