package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Byte-for-byte comparison with golden blocks made by an independent numpy implementation of the
 * llama.cpp reference quantizers ({@code src/test/python/make_gguf_block_golden.py}).
 */
class GgufBlockGoldenTest {

  record Case(String name, GgmlType type, float[] x, float[] importance, byte[] expected) {}

  static List<Case> load() throws IOException {
    byte[] all;
    try (InputStream in = GgufBlockGoldenTest.class.getResourceAsStream("/gguf/block_golden.bin")) {
      all = in.readAllBytes();
    }
    ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
    byte[] magic = new byte[4];
    b.get(magic);
    assertEquals("CPGB", new String(magic, StandardCharsets.US_ASCII), "golden magic");
    assertEquals(1, b.getInt(), "golden version");
    int count = b.getInt();
    List<Case> cases = new ArrayList<>();
    for (int c = 0; c < count; c++) {
      byte[] name = new byte[b.getShort()];
      b.get(name);
      GgmlType type = GgmlType.fromId(b.getInt());
      int n = b.getInt();
      boolean hasImportance = b.get() != 0;
      float[] x = new float[n];
      b.asFloatBuffer().get(x);
      b.position(b.position() + 4 * n);
      float[] imp = null;
      if (hasImportance) {
        imp = new float[n];
        b.asFloatBuffer().get(imp);
        b.position(b.position() + 4 * n);
      }
      byte[] expected = new byte[b.getInt()];
      b.get(expected);
      cases.add(new Case(new String(name, StandardCharsets.UTF_8), type, x, imp, expected));
    }
    return cases;
  }

  @Test
  void javaQuantizersMatchTheNumpyReferenceByteForByte() throws IOException {
    List<Case> cases = load();
    assertEquals(13, cases.size());
    for (Case c : cases) {
      byte[] ref = new byte[c.expected.length];
      int n = c.x.length;
      switch (c.type) {
        case Q8_0 -> BlockQ8_0.quantizeRowReference(c.x, 0, n, ref, 0);
        case Q4_0 -> BlockQ4_0.quantizeRowReference(c.x, 0, n, ref, 0);
        case Q5_0 -> BlockQ5_0.quantizeRowReference(c.x, 0, n, ref, 0);
        // Q4_1/Q5_1 weight by the whole row's mean square: each golden case is one row.
        case Q4_1 -> BlockQ4_1.quantizeRow(c.x, 0, n, ref, 0, c.importance);
        case Q5_1 -> BlockQ5_1.quantizeRow(c.x, 0, n, ref, 0, c.importance);
        case Q5_K -> {
          for (int r = 0; r < n / 256; r++) {
            float[] imp = c.importance == null ? null : slice(c.importance, r * 256, 256);
            BlockQ5_K.quantizeRow(c.x, r * 256, 256, ref, r * 176, imp);
          }
        }
        case Q6_K -> {
          // The importance is per position in the row; the golden rows are one super-block each.
          for (int r = 0; r < n / 256; r++) {
            float[] imp = c.importance == null ? null : slice(c.importance, r * 256, 256);
            BlockQ6_K.quantizeRow(c.x, r * 256, 256, ref, r * 210, imp);
          }
        }
        case Q4_K -> {
          for (int r = 0; r < n / 256; r++) {
            float[] imp = c.importance == null ? null : slice(c.importance, r * 256, 256);
            BlockQ4_K.quantizeRow(c.x, r * 256, 256, ref, r * 144, imp);
          }
        }
        default -> fail("unexpected type " + c.type);
      }
      assertBlocksEqual(c.name + " reference", c.type, c.expected, ref);
      byte[] viaFacade = new byte[c.expected.length];
      if (c.importance == null) {
        GgmlQuantizer.quantizeRow(c.type, c.x, 0, n, viaFacade, 0, null);
        assertBlocksEqual(c.name + " fast/facade", c.type, c.expected, viaFacade);
      }
    }
  }

  static float[] slice(float[] a, int from, int len) {
    float[] out = new float[len];
    System.arraycopy(a, from, out, 0, len);
    return out;
  }

  static void assertBlocksEqual(String what, GgmlType type, byte[] expected, byte[] actual) {
    assertEquals(expected.length, actual.length, what + ": length");
    int mismatches = 0;
    int first = -1;
    for (int i = 0; i < expected.length; i++) {
      if (expected[i] != actual[i]) {
        if (first < 0) {
          first = i;
        }
        mismatches++;
      }
    }
    if (mismatches > 0) {
      int block = first / type.typeSize();
      fail(
          String.format(
              "%s: %d bytes differ; first at byte %d (block %d, offset %d in block): expected"
                  + " 0x%02x, found 0x%02x. Hint: a field in the wrong place shows as a regular"
                  + " pattern, a rounding difference as isolated bytes.",
              what,
              mismatches,
              first,
              block,
              first % type.typeSize(),
              expected[first] & 0xff,
              actual[first] & 0xff));
    }
  }

  static Map<String, Case> byName() throws IOException {
    Map<String, Case> m = new java.util.HashMap<>();
    for (Case c : load()) {
      m.put(c.name, c);
    }
    return m;
  }
}
