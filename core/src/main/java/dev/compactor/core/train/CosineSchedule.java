package dev.compactor.core.train;

/**
 * Learning rate for step {@code t} (0-based): linear warmup from 0 to {@code peak} over {@code
 * warmupSteps}, then half a cosine from {@code peak} down to {@code min} at {@code totalSteps},
 * flat at {@code min} afterwards. The same curve as Hugging Face's {@code cosine_with_min_lr}.
 */
public record CosineSchedule(double peak, double min, int warmupSteps, int totalSteps) {

  public CosineSchedule {
    if (!(peak > 0) || min < 0 || min > peak) {
      throw new IllegalArgumentException(
          "expected 0 <= min <= peak and peak > 0, found peak " + peak + ", min " + min);
    }
    if (warmupSteps < 0 || totalSteps < warmupSteps) {
      throw new IllegalArgumentException(
          "expected 0 <= warmupSteps <= totalSteps, found " + warmupSteps + ", " + totalSteps);
    }
  }

  /** A constant learning rate. */
  public static CosineSchedule constant(double lr) {
    return new CosineSchedule(lr, lr, 0, 0);
  }

  public double lr(int step) {
    if (step < warmupSteps) {
      return peak * step / Math.max(1, warmupSteps);
    }
    double progress =
        Math.min(1.0, (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
}
