package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Checks {@link Bf16} against a reference that picks the nearer of the two bf16 neighbours with
 * exact decimal arithmetic, ties to the even one.
 */
class Bf16Test {

  static int referenceEncode(float f) {
    int bits = Float.floatToRawIntBits(f);
    int lo = bits >>> 16;
    if ((bits & 0xffff) == 0) {
      return lo;
    }
    int hi = lo + 1; // the next bf16 away from zero (may be infinity)
    BigDecimal x = new BigDecimal(Math.abs(f));
    BigDecimal below = new BigDecimal(Math.abs(Float.intBitsToFloat(lo << 16)));
    BigDecimal above =
        (hi & 0x7fff) == 0x7f80
            ? new BigDecimal(2).pow(128)
            : new BigDecimal(Math.abs(Float.intBitsToFloat(hi << 16)));
    int c = x.subtract(below).compareTo(above.subtract(x));
    return c < 0 ? lo : c > 0 ? hi : ((lo & 1) == 0 ? lo : hi);
  }

  @Test
  void widensByShifting() {
    assertEquals(1.0f, Bf16.toFloat((short) 0x3f80));
    assertEquals(-2.0f, Bf16.toFloat((short) 0xc000));
    assertEquals(Float.NEGATIVE_INFINITY, Bf16.toFloat((short) 0xff80));
    for (int h = 0; h < 1 << 16; h++) {
      assertEquals(h << 16, Float.floatToRawIntBits(Bf16.toFloat((short) h)));
    }
  }

  @Test
  void tiesRoundToEven() {
    // 1 + 2^-8 lies exactly between 1.0 (0x3f80, even) and 1 + 2^-7 (0x3f81): goes down.
    assertEquals((short) 0x3f80, Bf16.fromFloat(Float.intBitsToFloat(0x3f808000)));
    // Between 0x3f81 (odd) and 0x3f82 (even): goes up.
    assertEquals((short) 0x3f82, Bf16.fromFloat(Float.intBitsToFloat(0x3f818000)));
    // Just above / below a tie go to the nearer neighbour.
    assertEquals((short) 0x3f81, Bf16.fromFloat(Float.intBitsToFloat(0x3f808001)));
    assertEquals((short) 0x3f81, Bf16.fromFloat(Float.intBitsToFloat(0x3f817fff)));
    // Negative ties behave symmetrically.
    assertEquals((short) 0xbf80, Bf16.fromFloat(Float.intBitsToFloat(0xbf808000)));
    assertEquals((short) 0xbf82, Bf16.fromFloat(Float.intBitsToFloat(0xbf818000)));
    // Rounding can carry into the exponent and up to infinity.
    assertEquals((short) 0x4000, Bf16.fromFloat(Float.intBitsToFloat(0x3fffc000)));
    assertEquals((short) 0x7f80, Bf16.fromFloat(Float.MAX_VALUE));
  }

  @Test
  void nanStaysNanAndInfinityStaysInfinity() {
    // A NaN whose payload is only in the low 16 bits would truncate to infinity without the fix.
    float lowPayloadNan = Float.intBitsToFloat(0x7f800001);
    assertTrue(Float.isNaN(lowPayloadNan));
    assertTrue(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(lowPayloadNan))));
    assertTrue(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(Float.intBitsToFloat(0xffffffff)))));
    assertEquals((short) 0xffc0, Bf16.fromFloat(Float.intBitsToFloat(0xff800001)), "sign kept");
    assertEquals((short) 0x7f80, Bf16.fromFloat(Float.POSITIVE_INFINITY));
    assertEquals((short) 0xff80, Bf16.fromFloat(Float.NEGATIVE_INFINITY));
  }

  @Test
  void randomFloatsMatchTheExactReference() {
    Random r = new Random(11);
    for (int i = 0; i < 100_000; i++) {
      float f = Float.intBitsToFloat(r.nextInt());
      if (Float.isNaN(f)) {
        continue;
      }
      int ours = Bf16.fromFloat(f) & 0xffff;
      int ref = referenceEncode(f);
      assertEquals(ref, ours, () -> "encode 0x" + Integer.toHexString(Float.floatToRawIntBits(f)));
    }
  }

  @Test
  void bulkConvertersRoundTripLittleEndian() {
    float[] values = {1f, -2.5f, 3.3f, 1e30f, -0f};
    ByteBuffer buf = ByteBuffer.allocate(10);
    Bf16.fromFloats(values, 0, values.length, buf);
    assertEquals(10, buf.position());
    buf.flip();
    assertEquals((short) 0x3f80, buf.duplicate().order(ByteOrder.LITTLE_ENDIAN).getShort(0));
    float[] back = Bf16.toFloats(buf);
    for (int i = 0; i < values.length; i++) {
      assertEquals(Bf16.toFloat(Bf16.fromFloat(values[i])), back[i]);
    }
  }
}
