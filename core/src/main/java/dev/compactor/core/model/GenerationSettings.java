package dev.compactor.core.model;

/**
 * How {@link Generation} picks tokens: {@code temperature} 0 is greedy (argmax); otherwise sample
 * from softmax(logits / temperature) restricted to the {@code topK} most likely tokens ({@code 0} =
 * all), with a seeded generator so runs repeat.
 */
public record GenerationSettings(double temperature, int topK, long seed) {

  public GenerationSettings {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException(
          "temperature must be a finite number >= 0, was " + temperature);
    }
    if (topK < 0) {
      throw new IllegalArgumentException("topK must be >= 0 (0 = no limit), was " + topK);
    }
  }

  /** Argmax decoding. */
  public static GenerationSettings greedy() {
    return new GenerationSettings(0, 0, 0);
  }
}
