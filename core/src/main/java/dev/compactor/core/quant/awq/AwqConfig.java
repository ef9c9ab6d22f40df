package dev.compactor.core.quant.awq;

/**
 * Settings of AWQ (Lin et al., 2023), named as in AutoAWQ.
 *
 * @param bits 4 or 8
 * @param symmetric zero-point-free grid (AutoAWQ defaults to asymmetric, "zero_point": true)
 * @param groupSize 32, 64 or 128, or 0 for one scale per output channel
 * @param gridPoints exponents tried for the activation-aware scale: {@code alpha = i / (n - 1)}, i
 *     = 0..n-1 (20: 0, 1/19, ..., 1; AutoAWQ tries i / n, which stops at 0.95)
 * @param clipSearch also search a per-group clipping range (AutoAWQ's {@code _search_best_clip})
 * @param clipGrid clipping candidates {@code max * (1 - i / clipGrid)}
 * @param maxShrink the largest fraction of the range clipping may remove (0.5)
 */
public record AwqConfig(
    int bits,
    boolean symmetric,
    int groupSize,
    int gridPoints,
    boolean clipSearch,
    int clipGrid,
    double maxShrink) {

  public AwqConfig {
    if (bits != 4 && bits != 8) {
      throw new UnsupportedOperationException("not supported yet: " + bits + "-bit AWQ");
    }
    if (groupSize != 0 && groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException(
          "group size must be 0 (per channel), 32, 64 or 128, found " + groupSize);
    }
    if (gridPoints < 2) {
      throw new IllegalArgumentException("gridPoints must be at least 2, found " + gridPoints);
    }
    if (clipGrid < 1 || !(maxShrink >= 0 && maxShrink < 1)) {
      throw new IllegalArgumentException(
          "clipGrid must be >= 1 and maxShrink in [0, 1), found " + clipGrid + ", " + maxShrink);
    }
  }

  /** AutoAWQ's defaults for int4: asymmetric, 20 scale and 20 clip candidates, shrink 0.5. */
  public static AwqConfig int4(int groupSize, boolean symmetric) {
    return new AwqConfig(4, symmetric, groupSize, 20, true, 20, 0.5);
  }
}
