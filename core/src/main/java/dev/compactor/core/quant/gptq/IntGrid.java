package dev.compactor.core.quant.gptq;

/**
 * The uniform integer grid of {@link dev.compactor.core.quant.RtnQuantizer}, exposed per group so
 * that GPTQ can choose a group's scale when it reaches the group (from the weights as updated so
 * far) and round column by column. Same arithmetic as RTN, in float: symmetric {@code scale = amax
 * / ((qmax - qmin) / 2)}; asymmetric over the range widened to include 0, {@code scale = (max -
 * min) / (qmax - qmin)}, {@code zero = clamp(qmin - round(min / scale))}; a zero range gets scale
 * 1; rounding half to even.
 */
public final class IntGrid {

  final int bits;
  final boolean symmetric;
  final int qmin;
  final int qmax;
  final int offset;

  public IntGrid(int bits, boolean symmetric) {
    this.bits = bits;
    this.symmetric = symmetric;
    this.qmin = -(1 << (bits - 1));
    this.qmax = (1 << (bits - 1)) - 1;
    this.offset = 1 << (bits - 1);
  }

  /** Scale of values whose (0-widened) range is [{@code min}, {@code max}]. */
  public float scale(float min, float max) {
    float s =
        symmetric ? Math.max(-min, max) / ((qmax - qmin) / 2.0f) : (max - min) / (qmax - qmin);
    return s == 0 ? 1 : s;
  }

  /** Signed zero point for the range (0 when symmetric). */
  public int zero(float min, float max) {
    if (symmetric) {
      return 0;
    }
    float s = (max - min) / (qmax - qmin);
    return s == 0 ? 0 : clamp(qmin - (int) Math.rint(min / s));
  }

  /** Signed code of {@code w}. */
  public int quantize(double w, float scale, int zero) {
    return clamp((int) Math.rint((float) w / scale) + zero);
  }

  /** Value of signed code {@code q}. */
  public static float value(int q, float scale, int zero) {
    return (q - zero) * scale;
  }

  int clamp(int v) {
    return Math.max(qmin, Math.min(qmax, v));
  }
}
