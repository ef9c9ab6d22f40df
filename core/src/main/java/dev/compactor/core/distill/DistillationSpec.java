package dev.compactor.core.distill;

/**
 * The training settings of a distillation run, as a recipe's {@code distill} stage gives them.
 *
 * @param temperature softening temperature T of the KL term
 * @param alpha weight of the KL term; 1 - alpha weighs cross-entropy with the true next tokens
 * @param steps optimizer steps in total (a resumed run stops at the same total)
 * @param batchSize windows per step
 * @param learningRate peak learning rate of the cosine schedule
 * @param warmupSteps linear warm-up steps before the cosine decay
 * @param weightDecay AdamW's decoupled weight decay
 * @param maxGradNorm global gradient-norm clip (0 disables clipping)
 * @param checkpointEvery steps between checkpoints (0: only at the end)
 * @param seed seed of the data order
 */
public record DistillationSpec(
    float temperature,
    float alpha,
    int steps,
    int batchSize,
    float learningRate,
    int warmupSteps,
    float weightDecay,
    float maxGradNorm,
    int checkpointEvery,
    long seed) {

  public DistillationSpec {
    require(temperature > 0f, "temperature must be > 0, found " + temperature);
    require(alpha >= 0f && alpha <= 1f, "alpha must be in [0, 1], found " + alpha);
    require(steps >= 1, "steps must be >= 1, found " + steps);
    require(batchSize >= 1, "batch size must be >= 1, found " + batchSize);
    require(learningRate > 0f, "learning rate must be > 0, found " + learningRate);
    require(warmupSteps >= 0 && warmupSteps < steps, "warmup must be in [0, steps)");
    require(weightDecay >= 0f, "weight decay must be >= 0, found " + weightDecay);
    require(maxGradNorm >= 0f, "max grad norm must be >= 0, found " + maxGradNorm);
    require(checkpointEvery >= 0, "checkpoint interval must be >= 0, found " + checkpointEvery);
  }

  /** Common settings: T = 2, alpha = 0.5, lr 1e-4 with 5% warm-up, no decay, clip 1. */
  public static DistillationSpec defaults(int steps, int batchSize, int checkpointEvery) {
    return new DistillationSpec(
        2f, 0.5f, steps, batchSize, 1e-4f, steps / 20, 0f, 1f, checkpointEvery, 1234L);
  }

  /** A copy with another learning rate. */
  public DistillationSpec withLearningRate(float lr) {
    return new DistillationSpec(
        temperature,
        alpha,
        steps,
        batchSize,
        lr,
        warmupSteps,
        weightDecay,
        maxGradNorm,
        checkpointEvery,
        seed);
  }

  /** A copy that stops after {@code total} steps (same schedule length is NOT implied). */
  public DistillationSpec withSteps(int total) {
    return new DistillationSpec(
        temperature,
        alpha,
        total,
        batchSize,
        learningRate,
        Math.min(warmupSteps, total - 1),
        weightDecay,
        maxGradNorm,
        checkpointEvery,
        seed);
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }
}
