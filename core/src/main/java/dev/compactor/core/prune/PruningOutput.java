package dev.compactor.core.prune;

import java.util.Locale;

/**
 * How a pruned model is stored, and whether SparseGPT also quantizes it in the same sweep.
 *
 * <ul>
 *   <li>{@link Format#DENSE}: a Hugging Face safetensors directory with the zeros stored (every
 *       runtime loads it; no bytes saved). With {@code wbits} (SparseGPT only, the paper's joint
 *       sparsity + quantization): the dequantized weights there, plus {@code compressed-tensors/}
 *       with the codes in compressed-tensors' {@code pack-quantized} format and a {@code
 *       sparsity_config} of format {@code dense} describing the sparsity (vLLM serves it with its
 *       dense W4A16/W8A16 kernels; the zeros are not exploited).
 *   <li>{@link Format#SPARSE_24_BITMASK}: compressed-tensors {@code sparse-24-bitmask} (pattern 2:4
 *       only; vLLM's CUTLASS 2:4 kernels on Hopper, transformers with compressed-tensors).
 *   <li>{@link Format#SPARSE_BITMASK}: compressed-tensors {@code sparse-bitmask} (any sparsity;
 *       transformers with compressed-tensors; vLLM has no scheme for it).
 * </ul>
 *
 * The sparse formats with {@code wbits} are refused: vLLM serves 2:4 + int4 only as {@code
 * marlin-24}, a tile-permuted layout not written here.
 *
 * @param wbits 0, or 4 / 8: bits of SparseGPT's joint quantization
 * @param groupSize columns per scale with {@code wbits}, 0 for one scale per output row
 * @param symmetric symmetric grid (no zero points) with {@code wbits}
 */
public record PruningOutput(Format format, int wbits, int groupSize, boolean symmetric) {

  /** Dense safetensors, no quantization. */
  public static final PruningOutput DENSE = new PruningOutput(Format.DENSE, 0, 0, true);

  /** Storage formats, with their recipe / CLI spelling. */
  public enum Format {
    DENSE("dense"),
    SPARSE_24_BITMASK("sparse-24-bitmask"),
    SPARSE_BITMASK("sparse-bitmask");

    private final String value;

    Format(String value) {
      this.value = value;
    }

    public String value() {
      return value;
    }

    /** Parses {@code dense}, {@code sparse-24-bitmask} or {@code sparse-bitmask}. */
    public static Format parse(String s) {
      for (Format f : values()) {
        if (f.value.equals(s.trim().toLowerCase(Locale.ROOT))) {
          return f;
        }
      }
      throw new IllegalArgumentException(
          "unknown pruned-model format '"
              + s
              + "': expected one of dense, sparse-24-bitmask, sparse-bitmask");
    }
  }

  public PruningOutput {
    if (format == null) {
      throw new IllegalArgumentException("format must be given");
    }
    if (wbits != 0 && wbits != 4 && wbits != 8) {
      throw new UnsupportedOperationException(
          "not supported: wbits=" + wbits + " (compressed-tensors pack-quantized holds 4 or 8)");
    }
    if (groupSize < 0) {
      throw new IllegalArgumentException("group size must be >= 0, found " + groupSize);
    }
    if (wbits == 0 && groupSize != 0) {
      throw new IllegalArgumentException("a group size needs wbits");
    }
    if (wbits != 0 && format != Format.DENSE) {
      throw new UnsupportedOperationException(
          "not supported: format="
              + format.value
              + " with wbits="
              + wbits
              + ": vLLM serves 2:4 + int4 only as marlin-24, which is not written here; use"
              + " format dense (pack-quantized codes with a 2:4 sparsity_config)");
    }
  }

  /** Checks that {@code spec} can be stored this way, before any work is done. */
  public void check(PruningSpec spec) {
    if (format == Format.SPARSE_24_BITMASK
        && (spec.pattern() == null || spec.pattern().n() != 2 || spec.pattern().m() != 4)) {
      throw new UnsupportedOperationException(
          "not supported: format=sparse-24-bitmask with "
              + (spec.pattern() == null
                  ? "sparsity " + spec.sparsity()
                  : "pattern " + spec.pattern())
              + ": it stores 2:4 patterns only (use pattern 2:4, or format sparse-bitmask)");
    }
    if (wbits != 0 && spec.method() != PruningSpec.Method.SPARSEGPT) {
      throw new UnsupportedOperationException(
          "not supported: wbits with method "
              + spec.method().name().toLowerCase(Locale.ROOT)
              + " (joint quantization is SparseGPT's; prune, then run ./compactor quantize)");
    }
  }
}
