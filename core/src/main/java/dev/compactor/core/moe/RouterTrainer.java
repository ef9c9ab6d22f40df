package dev.compactor.core.moe;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.compactor.core.train.AdamW;
import dev.compactor.core.train.Autograd;
import dev.compactor.core.train.CosineSchedule;
import java.util.Map;
import java.util.Random;

/**
 * Trains MoEfication's router for one layer: a linear map hidden → E (no bias) from the MLP's input
 * (the post-attention RMSNorm output) to which experts carry the most activation mass. The target
 * of a token is its k heaviest experts (by {@code sum |a|} over each expert's neurons) as a
 * multi-hot vector scaled to sum 1; the loss is softmax cross-entropy against it, minimised with
 * the project's {@link AdamW} on seeded mini-batches.
 */
public final class RouterTrainer {

  /** Optimisation settings. */
  public record Settings(int steps, int batch, double peakLr, double minLr, long seed) {
    public Settings {
      if (steps < 1 || batch < 1 || !(peakLr > 0)) {
        throw new IllegalArgumentException(
            "router training: expected steps, batch and lr > 0, found "
                + steps
                + ", "
                + batch
                + ", "
                + peakLr);
      }
    }

    /** These settings with {@code steps} optimizer steps. */
    public Settings withSteps(int steps) {
      return new Settings(steps, batch, peakLr, minLr, seed);
    }

    /** What the CLI uses: 300 steps of 256 tokens, lr 1e-2 cosine to 1e-3, warmup 10. */
    public static Settings defaults(long seed) {
      return new Settings(300, 256, 1e-2, 1e-3, seed);
    }
  }

  /**
   * The trained weight [E, hidden] row-major and the loss of every step.
   *
   * @param weight router rows, expert by expert
   * @param losses the mini-batch loss before each step
   */
  public record Router(float[] weight, float[] losses) {}

  private RouterTrainer() {}

  /**
   * Trains on tokens {@code x} ([tokens, hidden] row-major) with {@code targets} (each token's k
   * target experts, {@code t*k + j}).
   */
  public static Router train(float[] x, int hidden, int[] targets, int experts, int k, Settings s) {
    int n = x.length / hidden;
    if (targets.length != n * k) {
      throw new IllegalArgumentException(
          "router training: expected " + k + " targets for each of " + n + " tokens");
    }
    Random random = new Random(s.seed());
    CosineSchedule schedule =
        new CosineSchedule(s.peakLr(), s.minLr(), Math.min(10, s.steps()), s.steps());
    float[] losses = new float[s.steps()];
    int batch = Math.min(s.batch(), n);
    int[] order = shuffled(n, random);
    int cursor = 0;
    try (NDManager m = NDManager.newBaseManager(Device.cpu())) {
      NDArray w = m.zeros(new Shape(experts, hidden));
      NDArray inverseK = m.create(1f / k);
      try (AdamW opt = new AdamW(Map.of("router", w), 0.9, 0.999, 1e-8, 0.0, name -> false)) {
        for (int step = 0; step < s.steps(); step++) {
          float[] xb = new float[batch * hidden];
          float[] tb = new float[batch * experts];
          for (int b = 0; b < batch; b++) {
            if (cursor == n) {
              order = shuffled(n, random);
              cursor = 0;
            }
            int t = order[cursor++];
            System.arraycopy(x, t * hidden, xb, b * hidden, hidden);
            for (int j = 0; j < k; j++) {
              tb[b * experts + targets[t * k + j]] = 1f;
            }
          }
          try (NDManager sm = m.newSubManager();
              GradientCollector gc = Autograd.collector()) {
            NDArray inputs = sm.create(xb, new Shape(batch, hidden));
            NDArray target = sm.create(tb, new Shape(batch, experts)).mul(inverseK);
            NDArray logits = inputs.matMul(w.transpose());
            NDArray loss = target.mul(logits.logSoftmax(1)).sum(new int[] {1}).mean().neg();
            gc.backward(loss);
            losses[step] = loss.getFloat();
          }
          opt.step(schedule.lr(step));
        }
      }
      return new Router(w.toFloatArray(), losses);
    }
  }

  /**
   * Mean over tokens of the fraction of each token's k target experts that the router's own top k
   * (by logit) contains.
   */
  public static double recall(float[] weight, float[] x, int hidden, int[] targets, int k) {
    int n = x.length / hidden;
    int[] picked = choose(weight, x, hidden, k);
    long hits = 0;
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < k; j++) {
        for (int i = 0; i < k; i++) {
          if (picked[t * k + i] == targets[t * k + j]) {
            hits++;
            break;
          }
        }
      }
    }
    return n == 0 ? Double.NaN : (double) hits / ((long) n * k);
  }

  /** The router's k experts for each token of {@code x} (plain Java, as the forward picks them). */
  public static int[] choose(float[] weight, float[] x, int hidden, int k) {
    int experts = weight.length / hidden;
    int n = x.length / hidden;
    float[] logits = new float[n * experts];
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < experts; e++) {
        double dot = 0;
        for (int d = 0; d < hidden; d++) {
          dot += (double) x[t * hidden + d] * weight[e * hidden + d];
        }
        logits[t * experts + e] = (float) dot;
      }
    }
    return MoefiedMlp.topK(logits, n, experts, k);
  }

  private static int[] shuffled(int n, Random random) {
    int[] a = new int[n];
    for (int i = 0; i < n; i++) {
      a[i] = i;
    }
    for (int i = n - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }
}
