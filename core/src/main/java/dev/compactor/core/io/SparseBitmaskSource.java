package dev.compactor.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;

/**
 * The dense view of a compressed-tensors checkpoint stored with a sparse compressor ({@code
 * quantization_config.sparsity_config.format} {@code "sparse-24-bitmask"} or {@code
 * "sparse-bitmask"}, layouts in {@link SparseBitmask}): each {@code P.shape}/{@code
 * P.compressed}/{@code P.bitmask}[/{@code P.row_offsets}] set appears as the one tensor {@code
 * P.weight} in its own dtype, decoded when read, at the place of its first part; every other tensor
 * passes through. {@link Checkpoints#open} wraps a directory in it when its config.json says so, so
 * evaluation, export and {@code ./compactor eval} read such a checkpoint like any other.
 */
public final class SparseBitmaskSource extends DecodedTensorView {

  /** compressed-tensors' {@code format} strings of the sparse compressors read here. */
  public static final String SPARSE_24_BITMASK = "sparse-24-bitmask";

  public static final String SPARSE_BITMASK = "sparse-bitmask";

  private static final Set<String> PARTS = Set.of("shape", "compressed", "bitmask", "row_offsets");

  private final SparseBitmask.Structure structure;

  SparseBitmaskSource(TensorSource stored, SparseBitmask.Structure structure) throws IOException {
    super(stored);
    this.structure = structure;
    for (String name : stored.names()) {
      int dot = name.lastIndexOf('.');
      String part = dot < 0 ? "" : name.substring(dot + 1);
      String prefix = dot < 0 ? name : name.substring(0, dot);
      if (!PARTS.contains(part) || !stored.contains(prefix + ".compressed")) {
        addStored(name);
        continue;
      }
      String weight = prefix + ".weight";
      if (!dense.containsKey(weight)) {
        TensorInfo values = stored.info(prefix + ".compressed");
        long[] shape = shapeOf(prefix);
        long bytes = shape[0] * shape[1] * values.dtype().bytes();
        addDense(new TensorInfo(weight, values.dtype(), shape, 0, bytes));
      }
    }
  }

  /**
   * {@code source} as a dense view when {@code dir}'s config.json declares a sparse compressor,
   * else {@code source} itself.
   *
   * @throws UnsupportedOperationException when the checkpoint is sparse and quantized at once, or
   *     uses a sparse format not read here
   */
  static TensorSource wrapIfSparse(Path dir, TensorSource source) throws IOException {
    Path config = dir.resolve(ModelDirectory.CONFIG);
    if (!Files.exists(config, LinkOption.NOFOLLOW_LINKS)) {
      return source;
    }
    JsonNode q = ModelDirectory.readJsonObject(config).path("quantization_config");
    String format = q.path("sparsity_config").path("format").asText("dense");
    SparseBitmask.Structure structure =
        switch (format) {
          case "dense" -> null;
          case SPARSE_24_BITMASK -> SparseBitmask.Structure.TWO_FOUR;
          case SPARSE_BITMASK -> SparseBitmask.Structure.UNSTRUCTURED;
          default ->
              throw new UnsupportedOperationException(
                  "not supported: sparsity_config.format=" + format + " (" + dir + ")");
        };
    if (structure == null) {
      return source;
    }
    if (q.path("config_groups").size() > 0) {
      throw new UnsupportedOperationException(
          "not supported yet: reading "
              + format
              + " together with quantization config_groups ("
              + dir
              + ")");
    }
    return new SparseBitmaskSource(source, structure);
  }

  @Override
  protected ByteBuffer decode(TensorInfo t) throws IOException {
    String prefix = t.name().substring(0, t.name().length() - ".weight".length());
    int rows = Math.toIntExact(t.shape()[0]);
    int cols = Math.toIntExact(t.shape()[1]);
    TensorInfo maskInfo = stored.info(prefix + ".bitmask");
    long[] maskShape = {rows, SparseBitmask.bytesPerRow(cols)};
    if (maskInfo.dtype() != DType.U8 || !Arrays.equals(maskInfo.shape(), maskShape)) {
      throw new CheckpointFormatException(
          prefix
              + ".bitmask: expected U8"
              + Arrays.toString(maskShape)
              + ", found "
              + maskInfo.dtype()
              + Arrays.toString(maskInfo.shape()));
    }
    byte[] mask = new byte[Math.toIntExact(maskInfo.byteLength())];
    stored.raw(prefix + ".bitmask").duplicate().get(mask);
    long[] offsets = null;
    if (structure == SparseBitmask.Structure.UNSTRUCTURED) {
      offsets = longs(prefix + ".row_offsets", new long[] {rows});
    } else {
      TensorInfo v = stored.info(prefix + ".compressed");
      if (!Arrays.equals(v.shape(), new long[] {rows, cols / 2})) {
        throw new CheckpointFormatException(
            prefix
                + ".compressed: expected ["
                + rows
                + ", "
                + cols / 2
                + "], found "
                + Arrays.toString(v.shape()));
      }
    }
    SparseBitmask.Compressed c =
        new SparseBitmask.Compressed(
            structure, t.dtype(), rows, cols, stored.raw(prefix + ".compressed"), mask, offsets);
    return SparseBitmask.decompress(c, prefix).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public String toString() {
    return stored + " (" + structure + " bitmask, decoded)";
  }

  private long[] shapeOf(String prefix) throws IOException {
    long[] expected =
        structure == SparseBitmask.Structure.TWO_FOUR ? new long[] {2, 1} : new long[] {2};
    long[] shape = longs(prefix + ".shape", expected);
    if (shape[0] < 0 || shape[1] < 0 || shape[0] * shape[1] > Integer.MAX_VALUE) {
      throw new CheckpointFormatException(
          prefix
              + ".shape: expected a 2-D shape under 2^31 elements, found "
              + shape[0]
              + "x"
              + shape[1]);
    }
    return shape;
  }

  private long[] longs(String name, long[] shape) throws IOException {
    TensorInfo t = stored.info(name);
    if (t.dtype() != DType.I64 || !Arrays.equals(t.shape(), shape)) {
      throw new CheckpointFormatException(
          name
              + ": expected I64"
              + Arrays.toString(shape)
              + ", found "
              + t.dtype()
              + Arrays.toString(t.shape()));
    }
    ByteBuffer b = stored.raw(name).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long[] v = new long[b.remaining() / 8];
    b.asLongBuffer().get(v);
    return v;
  }
}
