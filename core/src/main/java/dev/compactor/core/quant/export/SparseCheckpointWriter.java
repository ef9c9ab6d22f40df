package dev.compactor.core.quant.export;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.SparseBitmask;
import dev.compactor.core.io.SparseBitmaskSource;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.LinearGroups;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Rewrites a pruned (dense) Hugging Face checkpoint as a sparse compressed-tensors checkpoint, one
 * tensor at a time: every decoder linear weight (compressed-tensors' {@code targets: ["Linear"]}
 * minus {@code ignore: ["lm_head"]}) in the layout of {@link SparseBitmask}, every other tensor
 * copied byte for byte, and config.json with
 *
 * <pre>
 * quantization_config: { quant_method: "compressed-tensors",
 *   sparsity_config: { format: "sparse-24-bitmask" | "sparse-bitmask", targets: ["Linear"],
 *     ignore: ["lm_head"], global_sparsity, sparsity_structure: "2:4" | "unstructured",
 *     registry_requires_subclass: false } }
 * </pre>
 *
 * ({@code SparsityCompressionConfig} of compressed-tensors; {@code global_sparsity} here is the
 * fraction of zero elements among all parameters, informational: no runtime reads it).
 *
 * <p>Who loads what: {@code sparse-24-bitmask} is what vLLM serves with its CUTLASS 2:4 kernels
 * ({@code CompressedTensors24}: unquantized or 8-bit W8A8 weights, Hopper GPUs, every output
 * partition and input a multiple of 8); transformers with compressed-tensors installed decompresses
 * both formats on load. vLLM has no scheme for {@code sparse-bitmask}. Compactor itself reads both
 * back through {@link Checkpoints#open}.
 *
 * <p>A 2:4 export refuses any linear that is not 2:4 (compressed-tensors' compressor would silently
 * keep only the 2 largest of each 4); a mixture of experts is refused (not supported yet).
 */
public final class SparseCheckpointWriter {

  /** Shard size of the output, Hugging Face's default. */
  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  /**
   * What was written.
   *
   * @param compressedTensors linear weights stored compressed
   * @param denseBytes bytes those weights took dense in the input
   * @param compressedBytes bytes of their compressed parts (values, bitmask, shape, offsets)
   * @param globalSparsity fraction of zero elements among all parameters
   */
  public record Result(
      int compressedTensors, long denseBytes, long compressedBytes, double globalSparsity) {}

  private SparseCheckpointWriter() {}

  /** The compressed-tensors {@code format} string of a structure. */
  public static String format(SparseBitmask.Structure structure) {
    return structure == SparseBitmask.Structure.TWO_FOUR
        ? SparseBitmaskSource.SPARSE_24_BITMASK
        : SparseBitmaskSource.SPARSE_BITMASK;
  }

  /**
   * Writes {@code denseDir}'s model into {@code outDir} (absent or empty) in {@code structure}'s
   * format, copying the tokenizer files.
   */
  public static Result write(Path denseDir, Path outDir, SparseBitmask.Structure structure)
      throws IOException {
    if (Files.exists(outDir)) {
      try (var s = Files.list(outDir)) {
        if (s.findAny().isPresent()) {
          throw new IOException("output directory " + outDir + " must be empty or absent");
        }
      }
    }
    ModelDirectory model = ModelDirectory.open(denseDir);
    ModelConfig config = ModelConfig.read(denseDir);
    if (config.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + format(structure)
              + " export of "
              + config.modelType()
              + " (mixture-of-experts layers)");
    }
    if (model.configJson().has("quantization_config")) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + format(structure)
              + " export of a checkpoint that already has a quantization_config ("
              + denseDir
              + ")");
    }
    Set<String> targets = new HashSet<>();
    for (int layer = 0; layer < config.numLayers(); layer++) {
      String prefix = Layout.layerPrefix(config, "", layer);
      for (String linear : LinearGroups.compressible(config, layer)) {
        targets.add(prefix + linear + ".weight");
      }
    }
    int compressed = 0;
    long denseBytes = 0;
    long compressedBytes = 0;
    long zeros = 0;
    long params = 0;
    try (TensorSource src = Checkpoints.open(denseDir)) {
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.put("compactor.sparsity.format", format(structure));
      try (SafetensorsWriter out = new SafetensorsWriter(outDir, MAX_SHARD_BYTES, metadata)) {
        for (String name : src.names()) {
          TensorInfo t = src.info(name);
          params += t.numel();
          ByteBuffer raw = src.raw(name);
          if (t.dtype().isFloat()) {
            zeros += countZeros(raw, t.dtype(), t.numel());
          }
          if (!targets.contains(name)) {
            out.writeRaw(name, t.dtype(), t.shape(), raw);
            continue;
          }
          if (t.shape().length != 2) {
            throw new IllegalArgumentException(name + ": expected a 2-D weight, found " + t);
          }
          String module = name.substring(0, name.length() - ".weight".length());
          SparseBitmask.Compressed c =
              SparseBitmask.compress(
                  name,
                  raw,
                  t.dtype(),
                  Math.toIntExact(t.shape()[0]),
                  Math.toIntExact(t.shape()[1]),
                  structure);
          compressedBytes += write(out, module, c);
          denseBytes += t.byteLength();
          compressed++;
        }
      }
    }
    if (compressed == 0) {
      throw new UnsupportedOperationException(
          "not supported yet: " + format(structure) + " export of " + denseDir + ": no linears");
    }
    double globalSparsity = params == 0 ? 0 : (double) zeros / params;
    ObjectNode root = ((ObjectNode) model.configJson()).deepCopy();
    root.set("quantization_config", quantizationConfig(structure, globalSparsity));
    ModelDirectory.writeConfig(outDir, root);
    model.copyAuxiliaryFilesTo(outDir);
    return new Result(compressed, denseBytes, compressedBytes, globalSparsity);
  }

  /** The sparse-only {@code quantization_config} of the class comment. */
  public static ObjectNode quantizationConfig(
      SparseBitmask.Structure structure, double globalSparsity) {
    ObjectNode q = JsonNodeFactory.instance.objectNode();
    q.put("quant_method", "compressed-tensors");
    q.set("sparsity_config", sparsityConfig(format(structure), structure, globalSparsity));
    return q;
  }

  /**
   * A {@code sparsity_config}: {@code format} {@code "dense"} describes sparse weights stored by
   * another compressor (e.g. pack-quantized ones).
   */
  public static ObjectNode sparsityConfig(
      String format, SparseBitmask.Structure structure, double globalSparsity) {
    ObjectNode s = JsonNodeFactory.instance.objectNode();
    s.put("format", format);
    s.putArray("targets").add("Linear");
    s.putArray("ignore").add("lm_head");
    s.put("global_sparsity", globalSparsity);
    s.put(
        "sparsity_structure",
        structure == SparseBitmask.Structure.TWO_FOUR ? "2:4" : "unstructured");
    s.put("registry_requires_subclass", false);
    return s;
  }

  private static long write(SafetensorsWriter out, String module, SparseBitmask.Compressed c)
      throws IOException {
    ByteBuffer shape = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    shape.putLong(c.rows()).putLong(c.cols()).flip();
    out.writeRaw(module + ".shape", DType.I64, c.shapeShape(), shape);
    out.writeRaw(module + ".compressed", c.dtype(), c.valuesShape(), c.values());
    out.writeRaw(module + ".bitmask", DType.U8, c.bitmaskShape(), ByteBuffer.wrap(c.bitmask()));
    long bytes = 16 + c.values().remaining() + c.bitmask().length;
    if (c.rowOffsets() != null) {
      ByteBuffer b = ByteBuffer.allocate(8 * c.rows()).order(ByteOrder.LITTLE_ENDIAN);
      b.asLongBuffer().put(c.rowOffsets());
      out.writeRaw(module + ".row_offsets", DType.I64, new long[] {c.rows()}, b);
      bytes += 8L * c.rows();
    }
    return bytes;
  }

  private static long countZeros(ByteBuffer raw, DType dtype, long numel) {
    ByteBuffer b = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long n = 0;
    int w = dtype.bytes();
    for (long i = 0; i < numel; i++) {
      int at = (int) (i * w);
      boolean zero =
          switch (dtype) {
            case F32 -> (b.getInt(at) & 0x7fffffff) == 0;
            case F64 -> (b.getLong(at) & 0x7fffffffffffffffL) == 0;
            default -> (b.getShort(at) & 0x7fff) == 0;
          };
      n += zero ? 1 : 0;
    }
    return n;
  }

  /** The names stored for linear {@code module} in {@code structure}'s format. */
  static List<String> partNames(String module, SparseBitmask.Structure structure) {
    return structure == SparseBitmask.Structure.TWO_FOUR
        ? List.of(module + ".shape", module + ".compressed", module + ".bitmask")
        : List.of(
            module + ".shape",
            module + ".compressed",
            module + ".bitmask",
            module + ".row_offsets");
  }
}
