package dev.compactor.core.quant.mixed;

import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One round-to-nearest candidate for a linear, written {@code int<bits>[g<group>]} ({@code int8} is
 * one scale per output channel, {@code int4g32} one per 32 inputs). The grid is asymmetric (zero
 * points), the integer methods' default in {@code WeightQuantization}.
 *
 * @param bits 2, 3, 4 or 8
 * @param groupSize 0 for per channel, else 32, 64 or 128
 */
public record QuantOption(int bits, int groupSize) {

  private static final Pattern FORM = Pattern.compile("int(\\d)(?:g(\\d+))?");

  public QuantOption {
    new RtnQuantizer(bits, false, groupSize); // validates both
  }

  /** Parses {@code int8}, {@code int4g128}, {@code int3g32}, ... */
  public static QuantOption parse(String s) {
    Matcher m = FORM.matcher(s.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "expected an option like int8, int4g128 or int2g32, found '" + s + "'");
    }
    return new QuantOption(
        Integer.parseInt(m.group(1)), m.group(2) == null ? 0 : Integer.parseInt(m.group(2)));
  }

  /** The label {@link #parse} reads. */
  public String id() {
    return "int" + bits + (groupSize == 0 ? "" : "g" + groupSize);
  }

  /** Quantizes row-major {@code w} ({@code rows x cols}). */
  public QuantizedTensor quantize(float[] w, int rows, int cols) {
    return new RtnQuantizer(bits, false, groupSize).quantize(w, rows, cols);
  }

  /**
   * Stored bytes of a {@code rows x cols} linear as a packed format holds it: codes at {@code bits}
   * each, an fp16 scale and a {@code bits}-wide zero point per group, the rule {@code
   * LayerwiseQuantizer.storedBytes(QuantizedLinear)} and the quality table's bits per weight use
   * ({@link QuantizedTensor} itself keeps 2- and 3-bit codes in nibbles, which no format stores).
   */
  public long storedBytes(int rows, int cols) {
    long n = (long) rows * cols;
    long groups = (long) rows * (groupSize == 0 ? 1 : cols / groupSize);
    return n * bits / 8 + 2 * groups + groups * bits / 8;
  }
}
