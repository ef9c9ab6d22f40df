package dev.compactor.core.quant.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes a quantized model as a compressed-tensors checkpoint that vLLM and transformers load: the
 * quantized linears in the layout of compressed-tensors' compressors, every other tensor dense, and
 * {@code config.json} with the {@code quantization_config} of {@link CompressedTensorsScheme}. One
 * tensor at a time, so a model streams through.
 *
 * <p>Per quantized linear {@code P} (e.g. {@code model.layers.0.self_attn.q_proj}):
 *
 * <ul>
 *   <li>pack-quantized ({@code PackedQuantizationCompressor.compress_module}): {@code
 *       P.weight_packed} I32 {@code [out, ceil(in * bits / 32)]} ({@link Int32Packing}, codes
 *       offset-binary: signed q + 2^(bits-1)), {@code P.weight_shape} I64 {@code [2] = [out, in]},
 *       {@code P.weight_scale} [out, groups] in the model's float type, asymmetric only {@code
 *       P.weight_zero_point} I32 {@code [ceil(out * bits / 32), groups]} (zero points packed along
 *       dim 0);
 *   <li>int-quantized ({@code NaiveQuantizationCompressor}): {@code P.weight} I8 {@code [out, in]}
 *       (signed q), {@code P.weight_scale}, asymmetric only {@code P.weight_zero_point} I8 {@code
 *       [out, groups]};
 *   <li>both: {@code P.weight_g_idx} I32 {@code [in]} with actorder "group".
 * </ul>
 *
 * Value of element (r, c) = {@code (q - zero_point) * scale[r, g_idx[c]]}, {@code g_idx[c] = c /
 * group_size} when absent. {@code read_compressed_tensors.py} (core/src/test/python) reads these
 * files with numpy alone.
 */
public final class CompressedTensorsWriter implements AutoCloseable {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final CompressedTensorsScheme scheme;
  private final DType floatType;
  private final SafetensorsWriter out;
  private boolean finished;

  /**
   * @param floatType F16, BF16 or F32: dense tensors and scales (the model's {@code torch_dtype})
   */
  public CompressedTensorsWriter(
      Path dir, CompressedTensorsScheme scheme, DType floatType, Map<String, String> metadata)
      throws IOException {
    if (floatType != DType.F16 && floatType != DType.BF16 && floatType != DType.F32) {
      throw new IllegalArgumentException("float type must be F16, BF16 or F32, found " + floatType);
    }
    this.dir = dir;
    this.scheme = scheme;
    this.floatType = floatType;
    this.out = new SafetensorsWriter(dir, 4L << 30, metadata);
  }

  public CompressedTensorsScheme scheme() {
    return scheme;
  }

  /** Writes linear {@code prefix} (name without {@code .weight}) in the scheme's format. */
  public void writeLinear(String prefix, QuantizedLinear q) throws IOException {
    scheme.check(prefix, q);
    int f = scheme.bits() == 4 ? 8 : 4;
    if (scheme.format() == CompressedTensorsScheme.Format.PACK_QUANTIZED) {
      int[] packed = Int32Packing.packRows(q.codes(), q.rows(), q.cols(), q.bits());
      out.writeRaw(
          prefix + ".weight_packed",
          DType.I32,
          new long[] {q.rows(), (q.cols() + f - 1) / f},
          ints(packed));
      out.writeRaw(prefix + ".weight_shape", DType.I64, new long[] {2}, longs(q.rows(), q.cols()));
    } else {
      byte[] signed = new byte[q.codes().length];
      int offset = 1 << (q.bits() - 1);
      for (int i = 0; i < signed.length; i++) {
        signed[i] = (byte) ((q.codes()[i] & 0xff) - offset);
      }
      out.writeRaw(
          prefix + ".weight", DType.I8, new long[] {q.rows(), q.cols()}, ByteBuffer.wrap(signed));
    }
    out.write(prefix + ".weight_scale", floatType, new long[] {q.rows(), q.groups()}, q.scales());
    if (!q.symmetric()) {
      if (scheme.format() == CompressedTensorsScheme.Format.PACK_QUANTIZED) {
        int[] zp = Int32Packing.packColumns(q.zeros(), q.rows(), q.groups(), q.bits());
        out.writeRaw(
            prefix + ".weight_zero_point",
            DType.I32,
            new long[] {(q.rows() + f - 1) / f, q.groups()},
            ints(zp));
      } else {
        byte[] zp = new byte[q.zeros().length];
        int offset = 1 << (q.bits() - 1);
        for (int i = 0; i < zp.length; i++) {
          zp[i] = (byte) ((q.zeros()[i] & 0xff) - offset);
        }
        out.writeRaw(
            prefix + ".weight_zero_point",
            DType.I8,
            new long[] {q.rows(), q.groups()},
            ByteBuffer.wrap(zp));
      }
    }
    if (q.gIdx() != null) {
      out.writeRaw(prefix + ".weight_g_idx", DType.I32, new long[] {q.cols()}, ints(q.gIdx()));
    }
  }

  /** Writes an unquantized tensor (embeddings, norms, biases, the head) in the float type. */
  public void writeDense(String name, long[] shape, float[] values) throws IOException {
    out.write(name, floatType, shape, values);
  }

  /**
   * Completes the checkpoint: closes the weights and writes {@code config.json} ({@code config}
   * with {@code torch_dtype} and {@code quantization_config}). {@code ignore} lists the Linear
   * modules left dense (compressed-tensors matches them by name, e.g. {@code lm_head}).
   */
  public void finish(ModelConfig config, List<String> ignore) throws IOException {
    finish(config, ignore, null);
  }

  /**
   * As {@link #finish(ModelConfig, List)}, adding {@code sparsityConfig} (null: none) as {@code
   * quantization_config.sparsity_config}, how compressed-tensors describes weights that are both
   * quantized and sparse.
   */
  public void finish(ModelConfig config, List<String> ignore, ObjectNode sparsityConfig)
      throws IOException {
    out.close();
    // vLLM builds every layer from the one intermediate_size
    config.requireUniformWidths("compressed-tensors export");
    ObjectNode root = (ObjectNode) JSON.readTree(config.toJson());
    root.put(
        "torch_dtype",
        switch (floatType) {
          case F16 -> "float16";
          case BF16 -> "bfloat16";
          default -> "float32";
        });
    ObjectNode q = scheme.quantizationConfig(ignore);
    if (sparsityConfig != null) {
      q.set("sparsity_config", sparsityConfig);
    }
    root.set("quantization_config", q);
    Files.writeString(
        dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    finished = true;
  }

  /** Closes the weights; without {@link #finish} the directory has no config.json. */
  @Override
  public void close() throws IOException {
    if (!finished) {
      out.close();
    }
  }

  private static ByteBuffer ints(int[] v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asIntBuffer().put(v);
    return b;
  }

  private static ByteBuffer longs(long... v) {
    ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(v);
    return b;
  }
}
