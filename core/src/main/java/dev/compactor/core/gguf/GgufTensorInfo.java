package dev.compactor.core.gguf;

import java.util.Arrays;

/**
 * A tensor entry of a GGUF file. {@code shape} is row-major (outermost first, as PyTorch and
 * safetensors write it); GGUF stores the reverse ({@code ne[0]} = row length), which {@link
 * #ggmlDims()} gives. {@code offset} is relative to the start of the data section.
 */
public record GgufTensorInfo(String name, long[] shape, GgmlType type, long offset) {

  public GgufTensorInfo {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  public long numel() {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  /** Length of the innermost dimension (ggml's {@code ne[0]}). */
  public long rowLength() {
    return shape.length == 0 ? 1 : shape[shape.length - 1];
  }

  public long byteSize() {
    return type.bytesFor(numel());
  }

  /** The dimensions in ggml order. */
  public long[] ggmlDims() {
    long[] d = new long[shape.length];
    for (int i = 0; i < shape.length; i++) {
      d[i] = shape[shape.length - 1 - i];
    }
    return d;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof GgufTensorInfo t
        && name.equals(t.name)
        && Arrays.equals(shape, t.shape)
        && type == t.type
        && offset == t.offset;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + " " + type + Arrays.toString(shape) + " @" + offset;
  }
}
