package dev.compactor.core.quant.pipeline;

import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.quant.Fp8E4M3;
import dev.compactor.core.quant.Nf4;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import java.util.List;
import java.util.Locale;

/**
 * What {@link HfQuantizationPipeline} does to a checkpoint: which rounding scheme the decoder
 * linear weights get, and which GGUF files to write next to the Hugging Face directory.
 *
 * @param method {@code rtn}, {@code nf4} or {@code fp8}
 * @param bits weight bits: 4 or 8 for rtn, 4 for nf4, 8 for fp8
 * @param groupSize weights sharing one scale; 0 for one scale per output channel
 * @param symmetric rtn without zero points
 * @param gguf GGUF tensor types to export (empty: no GGUF file)
 */
public record QuantizationSpec(
    String method, int bits, int groupSize, boolean symmetric, List<GgmlType> gguf) {

  public QuantizationSpec {
    method = method.toLowerCase(Locale.ROOT);
    gguf = List.copyOf(gguf);
    switch (method) {
      case "rtn" -> new RtnQuantizer(bits, symmetric, groupSize);
      case "nf4" -> {
        if (bits != 4) {
          throw new IllegalArgumentException("nf4 is a 4-bit format, found bits " + bits);
        }
      }
      case "fp8" -> {
        if (bits != 8 || groupSize != 0) {
          throw new IllegalArgumentException(
              "fp8 stores 8 bits with one scale per output channel, found bits "
                  + bits
                  + " and group size "
                  + groupSize);
        }
      }
      case "gptq", "awq" ->
          throw new UnsupportedOperationException(
              "not supported yet: quantization method " + method + " (rtn, nf4 and fp8 are)");
      default ->
          throw new IllegalArgumentException(
              "quantization method: expected rtn, nf4 or fp8, found '" + method + "'");
    }
  }

  /** Round-to-nearest integer codes; {@code groupSize} 0 means per output channel. */
  public static QuantizationSpec rtn(int bits, int groupSize, boolean symmetric) {
    return new QuantizationSpec("rtn", bits, groupSize, symmetric, List.of());
  }

  /** This spec plus GGUF exports of the given types. */
  public QuantizationSpec withGguf(List<GgmlType> types) {
    return new QuantizationSpec(method, bits, groupSize, symmetric, types);
  }

  /** Quantizes one row-major {@code rows x cols} weight. */
  QuantizedTensor quantize(float[] w, int rows, int cols) {
    return switch (method) {
      case "rtn" -> new RtnQuantizer(bits, symmetric, groupSize).quantize(w, rows, cols);
      case "nf4" ->
          Nf4.quantize(w, rows, cols, groupSize == 0 ? Nf4.DEFAULT_BLOCK_SIZE : groupSize);
      case "fp8" -> Fp8E4M3.quantize(w, rows, cols, true);
      default -> throw new IllegalStateException(method);
    };
  }
}
