package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.SparseBitmask.Compressed;
import dev.compactor.core.io.SparseBitmask.Structure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * compressed-tensors' sparse bitmask layouts against make_sparse_bitmask_golden.py (numpy {@code
 * packbits} with the compressors' rules), round trips and refusals.
 */
class SparseBitmaskTest {

  private static final Path GOLDEN =
      Path.of("src/test/resources/golden/sparse/sparse_bitmask_golden.safetensors");

  private static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  private static long[] longs(TensorSource s, String name) throws Exception {
    ByteBuffer b = s.raw(name).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long[] v = new long[b.remaining() / 8];
    b.asLongBuffer().get(v);
    return v;
  }

  @Test
  void twoFourLayoutMatchesTheNumpyReferenceByteForByte() throws Exception {
    try (SafetensorsFile g = SafetensorsFile.open(GOLDEN)) {
      assertEquals("compactor-sparse-bitmask-golden", g.metadata().get("magic"));
      TensorInfo w = g.info("W24");
      Compressed c =
          SparseBitmask.compress("W24", g.raw("W24"), DType.BF16, 8, 24, Structure.TWO_FOUR);
      assertArrayEquals(g.info("W24.compressed").shape(), c.valuesShape());
      assertArrayEquals(bytes(g.raw("W24.compressed")), bytes(c.values()), "compressed values");
      assertArrayEquals(g.info("W24.bitmask").shape(), c.bitmaskShape());
      assertArrayEquals(bytes(g.raw("W24.bitmask")), c.bitmask(), "bitmask bits");
      assertArrayEquals(g.info("W24.shape").shape(), c.shapeShape());
      assertArrayEquals(new long[] {8, 24}, longs(g, "W24.shape"));
      assertArrayEquals(bytes(g.raw("W24")), bytes(SparseBitmask.decompress(c, "W24")));
      assertEquals(w.numel() / 2, c.storedElements());
    }
  }

  @Test
  void unstructuredLayoutMatchesTheNumpyReference() throws Exception {
    try (SafetensorsFile g = SafetensorsFile.open(GOLDEN)) {
      Compressed c =
          SparseBitmask.compress("WU", g.raw("WU"), DType.F32, 5, 13, Structure.UNSTRUCTURED);
      assertArrayEquals(g.info("WU.compressed").shape(), c.valuesShape());
      assertArrayEquals(bytes(g.raw("WU.compressed")), bytes(c.values()));
      assertArrayEquals(g.info("WU.bitmask").shape(), c.bitmaskShape());
      assertArrayEquals(bytes(g.raw("WU.bitmask")), c.bitmask());
      assertArrayEquals(longs(g, "WU.row_offsets"), c.rowOffsets());
      assertArrayEquals(longs(g, "WU.shape"), new long[] {5, 13});
      assertArrayEquals(bytes(g.raw("WU")), bytes(SparseBitmask.decompress(c, "WU")));
    }
  }

  @Test
  void randomTwoFourTensorsRoundTripExactlyInEveryFloatType() throws Exception {
    Random r = new Random(7);
    for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
      int rows = 6;
      int cols = 40;
      float[] v = new float[rows * cols];
      for (int i = 0; i < v.length; i += 4) {
        int a = r.nextInt(4);
        int b = (a + 1 + r.nextInt(3)) % 4;
        v[i + a] = (float) r.nextGaussian();
        v[i + b] = r.nextInt(5) == 0 ? 0f : (float) r.nextGaussian();
      }
      ByteBuffer raw = encode(v, dtype);
      for (Structure s : Structure.values()) {
        Compressed c = SparseBitmask.compress("w", raw, dtype, rows, cols, s);
        assertArrayEquals(bytes(raw), bytes(SparseBitmask.decompress(c, "w")), dtype + " " + s);
      }
    }
  }

  @Test
  void refusesGroupsWithMoreThanTwoNonzerosNamingTheTensorAndPlace() {
    float[] v = new float[2 * 8];
    v[8 + 4] = 1;
    v[8 + 5] = 2;
    v[8 + 7] = 3;
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                SparseBitmask.compress(
                    "layers.0.q_proj.weight",
                    encode(v, DType.F32),
                    DType.F32,
                    2,
                    8,
                    Structure.TWO_FOUR));
    assertTrue(
        e.getMessage()
            .contains("layers.0.q_proj.weight is not 2:4 sparse: row 1, columns 4..7 hold 3"),
        e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () ->
            SparseBitmask.compress(
                "w", encode(new float[6], DType.F32), DType.F32, 1, 6, Structure.TWO_FOUR));
  }

  @Test
  void decodingRejectsPartsThatDisagree() throws Exception {
    float[] v = {1, 0, 2, 0, 0, 0, 0, 3};
    Compressed c =
        SparseBitmask.compress("w", encode(v, DType.F32), DType.F32, 1, 8, Structure.TWO_FOUR);
    byte[] threeBits = c.bitmask().clone();
    threeBits[0] |= 1 << 1;
    Compressed bad = new Compressed(c.structure(), c.dtype(), 1, 8, c.values(), threeBits, null);
    assertThrows(CheckpointFormatException.class, () -> SparseBitmask.decompress(bad, "w"));
    Compressed u =
        SparseBitmask.compress("w", encode(v, DType.F32), DType.F32, 1, 8, Structure.UNSTRUCTURED);
    Compressed badOffsets =
        new Compressed(u.structure(), u.dtype(), 1, 8, u.values(), u.bitmask(), new long[] {1});
    assertThrows(CheckpointFormatException.class, () -> SparseBitmask.decompress(badOffsets, "w"));
  }

  static ByteBuffer encode(float[] v, DType dtype) {
    ByteBuffer b = ByteBuffer.allocate(v.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      switch (dtype) {
        case F32 -> b.putFloat(f);
        case F16 -> b.putShort(Fp16.fromFloat(f));
        case BF16 -> b.putShort(Bf16.fromFloat(f));
        default -> throw new IllegalArgumentException();
      }
    }
    return b.flip();
  }
}
