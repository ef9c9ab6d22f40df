package dev.compactor.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * Widens a tensor's little-endian bytes to fp32, whatever its floating-point storage type. {@code
 * where} names the file or source in error messages.
 */
final class TensorDecoding {

  private static final int CHUNK = 8192;

  private TensorDecoding() {}

  static float[] toFloats(TensorInfo t, ByteBuffer raw, Object where)
      throws CheckpointFormatException {
    float[] out = new float[elementCount(t, Integer.MAX_VALUE - 8)];
    decode(t, raw, FloatBuffer.wrap(out), where);
    return out;
  }

  /** fp32 values in a new direct buffer in native order, ready for zero-copy engine tensors. */
  static ByteBuffer toDirectFloats(TensorInfo t, ByteBuffer raw, Object where)
      throws CheckpointFormatException {
    int n = elementCount(t, Integer.MAX_VALUE / 4);
    ByteBuffer out = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder());
    decode(t, raw, out.asFloatBuffer(), where);
    return out;
  }

  private static int elementCount(TensorInfo t, long max) {
    long numel = t.numel();
    if (numel > max) {
      throw new UnsupportedOperationException(
          "not supported yet: tensor '"
              + t.name()
              + "' has "
              + numel
              + " elements, more than one fp32 array or buffer holds ("
              + max
              + ")");
    }
    return (int) numel;
  }

  private static void decode(TensorInfo t, ByteBuffer raw, FloatBuffer dst, Object where)
      throws CheckpointFormatException {
    ByteBuffer le = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    int n = dst.remaining();
    switch (t.dtype()) {
      case F32 -> dst.put(le.asFloatBuffer());
      case F16, BF16 -> {
        float[] chunk = new float[Math.min(CHUNK, n)];
        for (int off = 0; off < n; off += chunk.length) {
          int m = Math.min(chunk.length, n - off);
          if (t.dtype() == DType.F16) {
            Fp16.toFloats(le, chunk, 0, m);
          } else {
            Bf16.toFloats(le, chunk, 0, m);
          }
          dst.put(chunk, 0, m);
        }
      }
      case F64 -> {
        int p = le.position();
        for (int i = 0; i < n; i++) {
          dst.put((float) le.getDouble(p + 8 * i));
        }
      }
      default ->
          throw new CheckpointFormatException(
              where
                  + ": tensor '"
                  + t.name()
                  + "': expected a floating-point dtype (F32, F16, BF16, F64) to read as fp32, found "
                  + t.dtype().safetensorsName()
                  + "; read its bytes with raw() instead");
    }
  }
}
