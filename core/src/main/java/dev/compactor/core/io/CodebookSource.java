package dev.compactor.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;

/**
 * The dense view of a {@value Codebook#QUANT_METHOD} checkpoint (layout in {@link Codebook}): each
 * {@code P.weight_shape}/{@code P.codebook}/{@code P.indices} triple appears as the one F16 tensor
 * {@code P.weight} (exact: the centroids are F16), decoded when read, at the place of its first
 * part; every other tensor passes through. {@link Checkpoints#open} wraps a directory in it when
 * its config.json says so, so evaluation, generation and every later stage read it like any other
 * checkpoint. Every part is checked when the view is opened: a missing part, a codebook or index
 * tensor of the wrong shape or type is refused with what was expected and found.
 */
public final class CodebookSource extends DecodedTensorView {

  private final int bits;

  CodebookSource(TensorSource stored, int bits) throws IOException {
    super(stored);
    this.bits = Codebook.checkBits(bits);
    for (String name : stored.names()) {
      String prefix = prefixOf(name);
      if (prefix == null) {
        addStored(name);
        continue;
      }
      String weight = prefix + ".weight";
      if (dense.containsKey(weight)) {
        continue;
      }
      if (stored.contains(weight)) {
        throw new CheckpointFormatException(
            prefix + ": expected either " + weight + " or its codebook parts, found both");
      }
      long[] shape = checkParts(prefix);
      addDense(new TensorInfo(weight, DType.F16, shape, 0, shape[0] * shape[1] * 2));
    }
  }

  /** {@code name}'s linear prefix when it is one of the three codebook parts, else null. */
  private static String prefixOf(String name) {
    for (String suffix : List.of(Codebook.SHAPE, Codebook.CODEBOOK, Codebook.INDICES)) {
      if (name.endsWith(suffix)) {
        return name.substring(0, name.length() - suffix.length());
      }
    }
    return null;
  }

  private long[] checkParts(String prefix) throws IOException {
    for (String suffix : List.of(Codebook.SHAPE, Codebook.CODEBOOK, Codebook.INDICES)) {
      if (!stored.contains(prefix + suffix)) {
        throw new CheckpointFormatException(
            prefix
                + ": expected "
                + Codebook.SHAPE
                + ", "
                + Codebook.CODEBOOK
                + " and "
                + Codebook.INDICES
                + ", found no "
                + prefix
                + suffix);
      }
    }
    TensorInfo s = stored.info(prefix + Codebook.SHAPE);
    Codebook.expect(s, DType.I64, new long[] {2});
    ByteBuffer b = stored.raw(prefix + Codebook.SHAPE).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long rows = b.getLong();
    long cols = b.getLong();
    if (rows <= 0 || cols <= 0 || rows * cols > Integer.MAX_VALUE) {
      throw new CheckpointFormatException(
          prefix
              + Codebook.SHAPE
              + ": expected a positive 2-D shape under 2^31 elements, found "
              + rows
              + "x"
              + cols);
    }
    Codebook.expect(
        stored.info(prefix + Codebook.CODEBOOK), DType.F16, new long[] {rows, 1L << bits});
    Codebook.expect(
        stored.info(prefix + Codebook.INDICES),
        DType.U8,
        new long[] {rows, Codebook.bytesPerRow((int) cols, bits)});
    return new long[] {rows, cols};
  }

  /**
   * {@code source} as a dense view when {@code dir}'s config.json declares {@value
   * Codebook#QUANT_METHOD}, else {@code source} itself.
   */
  static TensorSource wrapIfCodebook(Path dir, TensorSource source) throws IOException {
    Path config = dir.resolve(ModelDirectory.CONFIG);
    if (!Files.exists(config, LinkOption.NOFOLLOW_LINKS)) {
      return source;
    }
    JsonNode q = ModelDirectory.readJsonObject(config).path("quantization_config");
    if (!Codebook.QUANT_METHOD.equals(q.path("quant_method").asText())) {
      return source;
    }
    JsonNode bits = q.path("bits");
    if (!bits.isInt()) {
      throw new CheckpointFormatException(
          config + ": quantization_config.bits: expected 2, 3 or 4, found " + bits);
    }
    try {
      return new CodebookSource(source, bits.asInt());
    } catch (IllegalArgumentException e) {
      throw new CheckpointFormatException(config + ": " + e.getMessage());
    }
  }

  /** Bits per stored code. */
  public int bits() {
    return bits;
  }

  @Override
  protected ByteBuffer decode(TensorInfo t) throws IOException {
    String prefix = t.name().substring(0, t.name().length() - ".weight".length());
    int rows = Math.toIntExact(t.shape()[0]);
    int cols = Math.toIntExact(t.shape()[1]);
    int k = 1 << bits;
    ByteBuffer cb = stored.raw(prefix + Codebook.CODEBOOK).duplicate();
    short[] centroids = new short[rows * k];
    cb.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(centroids);
    byte[] packed = new byte[rows * Codebook.bytesPerRow(cols, bits)];
    stored.raw(prefix + Codebook.INDICES).duplicate().get(packed);
    byte[] codes = Codebook.unpack(packed, rows, cols, bits);
    ByteBuffer out = ByteBuffer.allocateDirect(rows * cols * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        out.putShort(centroids[r * k + (codes[r * cols + j] & 0xff)]);
      }
    }
    return out.flip().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public String toString() {
    return stored + " (" + bits + "-bit codebook, decoded)";
  }
}
