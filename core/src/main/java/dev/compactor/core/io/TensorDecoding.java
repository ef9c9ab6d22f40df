package dev.compactor.core.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;

/** Widens a tensor's little-endian bytes to fp32, whatever its floating-point storage type. */
final class TensorDecoding {

  private TensorDecoding() {}

  static float[] toFloats(TensorInfo t, ByteBuffer raw, Path file)
      throws CheckpointFormatException {
    long numel = t.numel();
    if (numel > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(
          "not supported yet: tensor '"
              + t.name()
              + "' has "
              + numel
              + " elements, more than a"
              + " Java array holds");
    }
    int n = (int) numel;
    float[] out = new float[n];
    ByteBuffer le = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    switch (t.dtype()) {
      case F32 -> le.asFloatBuffer().get(out);
      case F16 -> Fp16.toFloats(le, out, 0, n);
      case BF16 -> Bf16.toFloats(le, out, 0, n);
      case F64 -> {
        int p = le.position();
        for (int i = 0; i < n; i++) {
          out[i] = (float) le.getDouble(p + 8 * i);
        }
      }
      default ->
          throw new CheckpointFormatException(
              file
                  + ": tensor '"
                  + t.name()
                  + "': expected a floating-point dtype (F32, F16, BF16, F64) to read as fp32, found "
                  + t.dtype().safetensorsName()
                  + "; read its bytes with raw() instead");
    }
    return out;
  }
}
