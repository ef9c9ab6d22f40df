package dev.compactor.core.quant.codebook;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.compactor.core.io.Codebook;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CodebookPackingTest {

  @Test
  void roundTripsEveryWidthAndOddRowLengths() {
    Random rnd = new Random(5);
    for (int bits = 2; bits <= 4; bits++) {
      for (int cols : new int[] {1, 7, 8, 13, 64, 129}) {
        int rows = 3;
        byte[] codes = new byte[rows * cols];
        for (int i = 0; i < codes.length; i++) {
          codes[i] = (byte) rnd.nextInt(1 << bits);
        }
        byte[] packed = Codebook.pack(codes, rows, cols, bits);
        assertEquals(rows * ((cols * bits + 7) / 8), packed.length, bits + " bits, " + cols);
        assertArrayEquals(codes, Codebook.unpack(packed, rows, cols, bits), bits + "/" + cols);
      }
    }
  }

  @Test
  void fourBitPutsTheEvenCodeInTheLowNibble() {
    byte[] packed = Codebook.pack(new byte[] {0x1, 0xA, 0xF, 0x3}, 1, 4, 4);
    assertArrayEquals(new byte[] {(byte) 0xA1, (byte) 0x3F}, packed);
  }

  @Test
  void threeBitStoresEightCodesInThreeBytesLsbFirst() {
    byte[] codes = {1, 2, 3, 4, 5, 6, 7, 0};
    long stream = 0;
    for (int j = 0; j < 8; j++) {
      stream |= (long) codes[j] << (3 * j);
    }
    byte[] expected = {(byte) stream, (byte) (stream >> 8), (byte) (stream >> 16)};
    assertArrayEquals(expected, Codebook.pack(codes, 1, 8, 3));
    // each row starts on a byte: 3 codes take 9 bits, so 2 bytes per row
    assertEquals(4, Codebook.pack(new byte[6], 2, 3, 3).length);
  }

  @Test
  void refusesCodesThatDoNotFit() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> Codebook.pack(new byte[] {0, 8}, 1, 2, 3));
    assertEquals("code 8 at (0, 1) does not fit in 3 bits", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Codebook.pack(new byte[2], 1, 2, 5));
    assertThrows(IllegalArgumentException.class, () -> Codebook.unpack(new byte[3], 1, 8, 4));
  }
}
