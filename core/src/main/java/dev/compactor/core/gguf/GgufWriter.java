package dev.compactor.core.gguf;

import dev.compactor.core.io.UncachedFileOutput;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF v3 file in one forward pass, tensor by tensor, so a model never has to be in memory
 * at once: declare the metadata and every tensor's name, shape and type first, then {@link
 * #writeTensor} each tensor's bytes in the declared order.
 *
 * <p>Byte layout (all integers little-endian; gguf.h / docs/gguf.md):
 *
 * <pre>
 * header:
 *   uint32 magic        = 0x46554747 ("GGUF" as bytes)
 *   uint32 version      = 3
 *   uint64 tensor_count
 *   uint64 metadata_kv_count
 * metadata_kv_count times:
 *   gguf_string key                 (uint64 byte length, UTF-8 bytes, no terminator)
 *   uint32 value_type               (GgufValueType id)
 *   value:  scalars in their width (bool = 1 byte 0/1), string as gguf_string,
 *           array = uint32 element_type, uint64 count, count elements (no nested arrays here)
 * tensor_count times (tensor infos):
 *   gguf_string name                (at most 64 bytes for llama.cpp)
 *   uint32 n_dims                   (at most 4)
 *   uint64 ne[n_dims]               (ggml order: ne[0] is the row length, i.e. the reverse of
 *                                    the row-major shape)
 *   uint32 ggml_type                (GgmlType id)
 *   uint64 offset                   (from the start of the data section; multiple of alignment)
 * zero padding up to a multiple of alignment (key general.alignment, uint32, default 32)
 * data section: each tensor's bytes at its offset, zero padding between tensors and at the end
 * </pre>
 *
 * <p>Offsets are computed from the sizes at declaration time. {@link #close()} fails if a declared
 * tensor was not written.
 */
public final class GgufWriter implements Closeable {

  public static final int MAGIC = 0x46554747;
  public static final int VERSION = 3;
  public static final int DEFAULT_ALIGNMENT = 32;
  public static final String ALIGNMENT_KEY = "general.alignment";

  private final OutputStream out;
  private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
  private final List<GgufTensorInfo> tensors = new ArrayList<>();
  private int alignment = DEFAULT_ALIGNMENT;
  private long nextOffset;
  private boolean headerWritten;
  private int written;
  private long position;
  private long partBytes;

  public GgufWriter(OutputStream out) {
    this.out = out;
  }

  /** Opens {@code path} for writing (replacing it). */
  public static GgufWriter create(Path path) throws IOException {
    return new GgufWriter(UncachedFileOutput.create(path));
  }

  /** Adds a metadata pair; {@code general.alignment} (UINT32, a power of two) also sets padding. */
  public GgufWriter put(String key, GgufValue value) {
    checkNotStarted();
    if (ALIGNMENT_KEY.equals(key)) {
      if (value.type() != GgufValueType.UINT32) {
        throw new IllegalArgumentException(
            ALIGNMENT_KEY + " must be UINT32, found " + value.type());
      }
      long a = value.asLong();
      if (a <= 0 || Long.bitCount(a) != 1) {
        throw new IllegalArgumentException(ALIGNMENT_KEY + " must be a power of two, found " + a);
      }
      if (!tensors.isEmpty()) {
        throw new IllegalStateException("set " + ALIGNMENT_KEY + " before adding tensors");
      }
      alignment = (int) a;
    }
    if (metadata.put(key, value) != null) {
      throw new IllegalArgumentException("duplicate metadata key " + key);
    }
    return this;
  }

  /** Declares a tensor; {@code shape} is row-major. Returns its info with the assigned offset. */
  public GgufTensorInfo addTensor(String name, long[] shape, GgmlType type) {
    checkNotStarted();
    if (name.getBytes(StandardCharsets.UTF_8).length > 64) {
      throw new IllegalArgumentException("tensor name longer than 64 bytes: " + name);
    }
    if (shape.length < 1 || shape.length > 4) {
      throw new IllegalArgumentException("tensor " + name + " must have 1 to 4 dims");
    }
    for (GgufTensorInfo t : tensors) {
      if (t.name().equals(name)) {
        throw new IllegalArgumentException("duplicate tensor " + name);
      }
    }
    if (!type.fitsRowLength(shape[shape.length - 1])) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + ": row length "
              + shape[shape.length - 1]
              + " is not a multiple of the "
              + type
              + " block size "
              + type.blockSize());
    }
    GgufTensorInfo info = new GgufTensorInfo(name, shape, type, nextOffset);
    nextOffset = align(nextOffset + info.byteSize());
    tensors.add(info);
    return info;
  }

  /** The declared tensors, in order. */
  public List<GgufTensorInfo> tensors() {
    return List.copyOf(tensors);
  }

  /** Writes header, metadata and tensor infos; called by the first {@link #writeTensor}. */
  public void writeHeader() throws IOException {
    checkNotStarted();
    ByteArrayOutputStream h = new ByteArrayOutputStream(1 << 16);
    LeWriter w = new LeWriter(h);
    w.u32(MAGIC);
    w.u32(VERSION);
    w.u64(tensors.size());
    w.u64(metadata.size());
    for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
      w.string(e.getKey());
      w.u32(e.getValue().type().id());
      writeValue(w, e.getValue().type(), e.getValue().elementType(), e.getValue().value());
    }
    for (GgufTensorInfo t : tensors) {
      w.string(t.name());
      long[] dims = t.ggmlDims();
      w.u32(dims.length);
      for (long d : dims) {
        w.u64(d);
      }
      w.u32(t.type().id());
      w.u64(t.offset());
    }
    h.writeTo(out);
    position = h.size();
    pad();
    headerWritten = true;
  }

  /** Writes the next declared tensor's bytes, all of them; {@code name} must be its name. */
  public void writeTensor(String name, byte[] data) throws IOException {
    writeTensor(name, data, 0, data.length);
  }

  public void writeTensor(String name, byte[] data, int off, int len) throws IOException {
    GgufTensorInfo t = next(name);
    if (partBytes != 0 || len != t.byteSize()) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " declared "
              + t.byteSize()
              + " bytes, given "
              + len
              + (partBytes != 0 ? " after " + partBytes + " written in parts" : ""));
    }
    writeTensorPart(name, data, off, len);
  }

  /**
   * Appends the next {@code len} bytes of tensor {@code name}, so a tensor can be streamed in
   * chunks; the tensor is complete (and the next one may start) once its declared size is written.
   */
  public void writeTensorPart(String name, byte[] data, int off, int len) throws IOException {
    GgufTensorInfo t = next(name);
    if (len < 0 || partBytes + len > t.byteSize()) {
      throw new IllegalArgumentException(
          "tensor "
              + name
              + " declared "
              + t.byteSize()
              + " bytes, given "
              + (partBytes + len)
              + " so far");
    }
    out.write(data, off, len);
    position += len;
    partBytes += len;
    if (partBytes == t.byteSize()) {
      pad();
      written++;
      partBytes = 0;
    }
  }

  private GgufTensorInfo next(String name) throws IOException {
    if (!headerWritten) {
      writeHeader();
    }
    if (written >= tensors.size()) {
      throw new IllegalStateException("all " + tensors.size() + " declared tensors are written");
    }
    GgufTensorInfo t = tensors.get(written);
    if (!t.name().equals(name)) {
      throw new IllegalStateException("expected tensor " + t.name() + " next, got " + name);
    }
    return t;
  }

  @Override
  public void close() throws IOException {
    try {
      if (!headerWritten) {
        writeHeader();
      }
      out.flush();
    } finally {
      out.close();
    }
    if (written != tensors.size()) {
      throw new IllegalStateException(
          "GGUF file incomplete: " + written + " of " + tensors.size() + " tensors written");
    }
  }

  private void pad() throws IOException {
    long target = align(position);
    while (position < target) {
      out.write(0);
      position++;
    }
  }

  private long align(long v) {
    return (v + alignment - 1) / alignment * alignment;
  }

  private void checkNotStarted() {
    if (headerWritten) {
      throw new IllegalStateException("header already written");
    }
  }

  private static void writeValue(LeWriter w, GgufValueType type, GgufValueType elem, Object v)
      throws IOException {
    switch (type) {
      case UINT8, INT8 -> w.u8(((Number) v).intValue());
      case UINT16, INT16 -> w.u16(((Number) v).intValue());
      case UINT32, INT32 -> w.u32(((Number) v).intValue());
      case UINT64, INT64 -> w.u64(((Number) v).longValue());
      case FLOAT32 -> w.u32(Float.floatToRawIntBits(((Number) v).floatValue()));
      case FLOAT64 -> w.u64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
      case BOOL -> w.u8(((Boolean) v) ? 1 : 0);
      case STRING -> w.string((String) v);
      case ARRAY -> {
        List<?> list = (List<?>) v;
        w.u32(elem.id());
        w.u64(list.size());
        for (Object o : list) {
          writeValue(w, elem, null, o);
        }
      }
    }
  }

  /** Little-endian primitive writes onto a stream. */
  static final class LeWriter {
    private final OutputStream o;

    LeWriter(OutputStream o) {
      this.o = o;
    }

    void u8(int v) throws IOException {
      o.write(v);
    }

    void u16(int v) throws IOException {
      o.write(v);
      o.write(v >>> 8);
    }

    void u32(int v) throws IOException {
      o.write(v);
      o.write(v >>> 8);
      o.write(v >>> 16);
      o.write(v >>> 24);
    }

    void u64(long v) throws IOException {
      u32((int) v);
      u32((int) (v >>> 32));
    }

    void string(String s) throws IOException {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      u64(b.length);
      o.write(b);
    }
  }
}
