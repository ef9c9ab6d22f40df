package dev.compactor.core.gguf;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Q4_0 row quantizer of {@link FastRowQuantizer} on the Vector API: per block, the largest
 * magnitude and its first position by lane compares, then {@code (int) (x * id + 8.5f)} for 16
 * values at a time in fp32 lanes (a multiply then an add, never fused, exactly as the scalar Java
 * expression is evaluated), clamped to 15, packed two nibbles per byte and narrowed to bytes. Every
 * output byte equals {@link BlockQ4_0#quantizeRowReference}'s ({@code FastRowQuantizerTest}).
 *
 * <p>Only loaded when the {@code jdk.incubator.vector} module is present ({@link #AVAILABLE} is
 * checked by the caller without touching this class's vector types), and only used with at least 8
 * fp32 lanes that divide 16.
 */
final class VectorQ4_0 {

  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final int L = F.length();
  private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
  private static final VectorSpecies<Byte> B =
      L >= 8 && L <= 16 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8)) : null;

  /** True when the vector path applies on this CPU (8 or 16 fp32 lanes). */
  static final boolean USABLE = B != null;

  private VectorQ4_0() {}

  static void quantizeRow(float[] x, int xOff, int n, byte[] y, int yOff) {
    int end = xOff + n;
    int out = yOff;
    for (int b = xOff; b < end; b += 32, out += 18) {
      IntVector m = IntVector.zero(I);
      for (int j = 0; j < 32; j += L) {
        m = m.max(bits(x, b + j));
      }
      int max = m.reduceLanes(VectorOperators.MAX);
      if (max >= 0x7f800000) {
        BlockQ4_0.quantizeRowReference(x, b, 32, y, out);
        continue;
      }
      // the reference keeps the first element of largest magnitude (strict "<" while scanning):
      // the lowest set bit of all chunks' compare masks, without a branch per chunk (which chunk
      // holds the maximum is a coin toss per block, and a mispredicted branch costs more than
      // the block's arithmetic)
      long hits = 0;
      for (int j = 0; j < 32; j += L) {
        hits |= bits(x, b + j).eq(max).toLong() << j;
      }
      float amax = max == 0 ? 0.0f : x[b + Long.numberOfTrailingZeros(hits)];
      float id = FastRowQuantizer.q4_0Header(amax, x, b, y, out);
      if (Float.isNaN(id)) {
        continue;
      }
      for (int j = 0; j < 16; j += L) {
        IntVector lo = nibble(x, b + j, id);
        IntVector hi = nibble(x, b + 16 + j, id);
        ((ByteVector)
                lo.lanewise(VectorOperators.OR, hi.lanewise(VectorOperators.LSHL, 4))
                    .castShape(B, 0))
            .intoArray(y, out + 2 + j);
      }
    }
  }

  private static IntVector bits(float[] x, int i) {
    return FloatVector.fromArray(F, x, i)
        .reinterpretAsInts()
        .lanewise(VectorOperators.AND, 0x7fffffff);
  }

  /** {@code min(15, (int) (x[i..] * id + 8.5f))} per lane. */
  private static IntVector nibble(float[] x, int i, float id) {
    return ((IntVector) FloatVector.fromArray(F, x, i).mul(id).add(8.5f).castShape(I, 0)).min(15);
  }
}
