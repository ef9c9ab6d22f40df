package dev.compactor.core.quant.export;

import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Reads back one quantized linear written by {@link CompressedTensorsWriter} (or by
 * compressed-tensors itself, for the same scheme): the inverse of the layouts documented there,
 * with every shape and dtype checked.
 */
public final class CompressedTensorsReader {

  private CompressedTensorsReader() {}

  /** The quantized linear {@code prefix} of {@code source}, stored with {@code scheme}. */
  public static QuantizedLinear readLinear(
      TensorSource source, String prefix, CompressedTensorsScheme scheme) throws IOException {
    int bits = scheme.bits();
    int f = 32 / bits;
    int offset = 1 << (bits - 1);
    int rows;
    int cols;
    byte[] codes;
    if (scheme.format() == CompressedTensorsScheme.Format.PACK_QUANTIZED) {
      long[] shape = longs(source, prefix + ".weight_shape", DType.I64, new long[] {2});
      rows = Math.toIntExact(shape[0]);
      cols = Math.toIntExact(shape[1]);
      int[] packed =
          ints(source, prefix + ".weight_packed", DType.I32, new long[] {rows, (cols + f - 1) / f});
      codes = Int32Packing.unpackRows(packed, rows, cols, bits);
    } else {
      TensorInfo info = source.info(prefix + ".weight");
      expect(info, DType.I8, null);
      rows = Math.toIntExact(info.shape()[0]);
      cols = Math.toIntExact(info.shape()[1]);
      codes = new byte[rows * cols];
      source.raw(prefix + ".weight").get(codes);
      for (int i = 0; i < codes.length; i++) {
        codes[i] = (byte) (codes[i] + offset);
      }
    }
    int group = scheme.groupSize() == 0 ? cols : scheme.groupSize();
    int groups = cols / group;
    TensorInfo scaleInfo = source.info(prefix + ".weight_scale");
    if (!Arrays.equals(scaleInfo.shape(), new long[] {rows, groups})) {
      throw new CheckpointFormatException(
          prefix
              + ".weight_scale: expected shape ["
              + rows
              + ", "
              + groups
              + "], found "
              + Arrays.toString(scaleInfo.shape()));
    }
    float[] scales = source.readFloats(prefix + ".weight_scale");
    byte[] zeros = null;
    if (!scheme.symmetric()) {
      if (scheme.format() == CompressedTensorsScheme.Format.PACK_QUANTIZED) {
        int[] zp =
            ints(
                source,
                prefix + ".weight_zero_point",
                DType.I32,
                new long[] {(rows + f - 1) / f, groups});
        zeros = Int32Packing.unpackColumns(zp, rows, groups, bits);
      } else {
        TensorInfo zi = source.info(prefix + ".weight_zero_point");
        expect(zi, DType.I8, new long[] {rows, groups});
        zeros = new byte[rows * groups];
        source.raw(prefix + ".weight_zero_point").get(zeros);
        for (int i = 0; i < zeros.length; i++) {
          zeros[i] = (byte) (zeros[i] + offset);
        }
      }
    }
    int[] gIdx = null;
    if ("group".equals(scheme.actOrder())) {
      gIdx = ints(source, prefix + ".weight_g_idx", DType.I32, new long[] {cols});
    }
    return new QuantizedLinear(
        rows, cols, bits, scheme.symmetric(), group, codes, scales, zeros, gIdx);
  }

  private static void expect(TensorInfo info, DType dtype, long[] shape)
      throws CheckpointFormatException {
    if (info.dtype() != dtype || (shape != null && !Arrays.equals(info.shape(), shape))) {
      throw new CheckpointFormatException(
          info.name()
              + ": expected "
              + dtype
              + (shape == null ? "" : Arrays.toString(shape))
              + ", found "
              + info.dtype()
              + Arrays.toString(info.shape()));
    }
  }

  private static int[] ints(TensorSource s, String name, DType dtype, long[] shape)
      throws IOException {
    expect(s.info(name), dtype, shape);
    ByteBuffer b = s.raw(name).order(ByteOrder.LITTLE_ENDIAN);
    int[] v = new int[b.remaining() / 4];
    b.asIntBuffer().get(v);
    return v;
  }

  private static long[] longs(TensorSource s, String name, DType dtype, long[] shape)
      throws IOException {
    expect(s.info(name), dtype, shape);
    ByteBuffer b = s.raw(name).order(ByteOrder.LITTLE_ENDIAN);
    long[] v = new long[b.remaining() / 8];
    b.asLongBuffer().get(v);
    return v;
  }
}
