package dev.compactor.core.quant.table;

import java.util.Locale;

/**
 * How the decoder's linear weights are quantized: method, bits and group size, validated together
 * so every user-facing entry point (the {@code quantize} command, the quality table) gets the same
 * clear message for an impossible combination.
 *
 * @param method the rounding algorithm
 * @param bits 4 or 8 (nf4: 4, fp8: 8); rtn and gptq also 2 or 3, for the dequantized evaluation
 *     path (no exporter writes them)
 * @param groupSize input columns sharing one scale; 0 for one scale per output channel
 * @param symmetric integer grid without zero points (rtn, gptq, awq); always true for fp8 and nf4,
 *     whose grids are symmetric by construction
 */
public record WeightQuantization(Method method, int bits, int groupSize, boolean symmetric) {

  /** The supported algorithms. */
  public enum Method {
    /** Round to nearest on an integer grid, no calibration. */
    RTN(false),
    /** GPTQ (Frantar et al.): Hessian-based error feedback, needs calibration. */
    GPTQ(true),
    /** AWQ (Lin et al.): activation-aware scales and clipping, needs calibration. */
    AWQ(true),
    /** FP8 E4M3 codes with one scale per output channel. */
    FP8(false),
    /** NormalFloat4 (QLoRA) with absmax blocks of {@code groupSize} columns. */
    NF4(false);

    private final boolean calibrated;

    Method(boolean calibrated) {
      this.calibrated = calibrated;
    }

    /** Whether its grid is symmetric by construction (fp8, nf4: no zero points). */
    public boolean symmetricOnly() {
      return this == FP8 || this == NF4;
    }

    /** Whether it needs calibration text. */
    public boolean calibrated() {
      return calibrated;
    }

    /** The lower-case name used on command lines and in provenance. */
    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code rtn|gptq|awq|fp8|nf4}; throws IllegalArgumentException otherwise. */
    public static Method parse(String s) {
      for (Method m : values()) {
        if (m.id().equals(s.trim().toLowerCase(Locale.ROOT))) {
          return m;
        }
      }
      throw new IllegalArgumentException(
          "unknown method '" + s + "'; expected one of rtn, gptq, awq, fp8, nf4");
    }
  }

  public WeightQuantization {
    if (method == null) {
      throw new IllegalArgumentException("method must be given");
    }
    if (!symmetric && method.symmetricOnly()) {
      throw new IllegalArgumentException(
          method.id() + " has a symmetric grid (no zero points); asymmetric is not possible");
    }
    // 2 and 3 bits: the dequantized evaluation path only (compressed-tensors refuses them)
    boolean lowBits = (bits == 2 || bits == 3) && (method == Method.RTN || method == Method.GPTQ);
    if (bits != 4 && bits != 8 && !lowBits) {
      throw new IllegalArgumentException(
          "bits must be 4 or 8 (2 or 3 with rtn or gptq, dequantized), found " + bits);
    }
    if (groupSize != 0 && groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException(
          "group size must be -1 (per output channel), 32, 64 or 128, found " + groupSize);
    }
    if (method == Method.FP8 && (bits != 8 || groupSize != 0)) {
      throw new IllegalArgumentException(
          "fp8 stores 8-bit codes with one scale per output channel (--bits 8 --group-size -1),"
              + " found bits "
              + bits
              + " and group size "
              + (groupSize == 0 ? -1 : groupSize));
    }
    if (method == Method.NF4 && (bits != 4 || groupSize == 0)) {
      throw new IllegalArgumentException(
          "nf4 stores 4-bit codes in absmax blocks (--bits 4 --group-size 32|64|128), found bits "
              + bits
              + " and group size "
              + (groupSize == 0 ? -1 : groupSize));
    }
  }

  /**
   * The method's default grid: asymmetric (zero points) for the integer methods, as AutoGPTQ,
   * AutoAWQ and llm-compressor's asymmetric schemes store them; symmetric for fp8 and nf4.
   */
  public WeightQuantization(Method method, int bits, int groupSize) {
    this(method, bits, groupSize, method.symmetricOnly());
  }

  /**
   * Checks that the group divides every linear's input width ({@code widths}: hidden size,
   * intermediate size, attention width).
   */
  public void checkFits(int... widths) {
    if (groupSize == 0) {
      return;
    }
    for (int w : widths) {
      if (w % groupSize != 0) {
        throw new IllegalArgumentException(
            "group size "
                + groupSize
                + " does not divide the model's linear input width "
                + w
                + "; choose a group size dividing "
                + java.util.Arrays.toString(widths)
                + " or -1");
      }
    }
  }

  /** A short label such as {@code gptq int4 g128} ({@code sym} appended for symmetric grids). */
  public String label() {
    String g = groupSize == 0 ? "per-channel" : "g" + groupSize;
    return switch (method) {
      case FP8 -> "fp8 e4m3 per-channel";
      case NF4 -> "nf4 block " + groupSize;
      default -> method.id() + " int" + bits + " " + g + (symmetric ? " sym" : "");
    };
  }
}
