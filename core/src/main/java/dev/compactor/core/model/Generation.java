package dev.compactor.core.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.Random;

/**
 * Text continuation with any {@link CausalLM}: the prompt is fed once, then one token per step
 * through the model's KV-cache decoder, so each new token costs one position of work per layer.
 */
public final class Generation {

  private Generation() {}

  /**
   * Up to {@code maxTokens} new token ids following {@code prompt} (fewer when the model's context
   * is full). The prompt itself is not included.
   */
  public static int[] generate(
      CausalLM model, int[] prompt, int maxTokens, GenerationSettings settings) {
    return generateTimed(model, prompt, maxTokens, settings).tokens();
  }

  /**
   * What {@link #generate} produced and how long each phase took: prefill is the pass over the
   * prompt that also yields the first new token; decode is every later single-token step.
   */
  public record Timed(int[] tokens, int promptTokens, long prefillNanos, long decodeNanos) {

    /** Prompt tokens per second of the prefill pass (NaN when nothing was generated). */
    public double prefillTokensPerSecond() {
      return tokens.length == 0 ? Double.NaN : promptTokens / (prefillNanos / 1e9);
    }

    /** New tokens per second after the first (NaN when fewer than two were generated). */
    public double decodeTokensPerSecond() {
      return tokens.length < 2 ? Double.NaN : (tokens.length - 1) / (decodeNanos / 1e9);
    }
  }

  /** {@link #generate}, timing the prefill and the decode steps separately. */
  public static Timed generateTimed(
      CausalLM model, int[] prompt, int maxTokens, GenerationSettings settings) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt must hold at least one token");
    }
    int budget = Math.max(0, Math.min(maxTokens, model.maxSequenceLength() - prompt.length));
    int[] out = new int[budget];
    Random random = new Random(settings.seed());
    try (NDManager manager = NDManager.newBaseManager(deviceOf(model));
        CausalLM.Decoder decoder = model.decoder(manager, 1)) {
      int[] feed = prompt;
      long start = System.nanoTime();
      long prefill = 0;
      for (int n = 0; n < budget; n++) {
        try (NDManager step = manager.newSubManager()) {
          NDArray tokens = step.create(feed, new Shape(1, feed.length));
          NDArray logits = decoder.step(tokens);
          logits.attach(step);
          float[] last = logits.get(0, feed.length - 1).toFloatArray();
          out[n] = pick(last, settings, random);
          feed = new int[] {out[n]};
        }
        if (n == 0) {
          prefill = System.nanoTime() - start;
        }
      }
      long total = System.nanoTime() - start;
      return new Timed(out, prompt.length, prefill, total - prefill);
    }
  }

  private static Device deviceOf(CausalLM model) {
    if (model instanceof Transformer t) {
      return t.device();
    }
    if (model instanceof StreamingTransformer s) {
      return s.device();
    }
    return Device.cpu();
  }

  static int pick(float[] logits, GenerationSettings s, Random random) {
    if (s.temperature() == 0) {
      int best = 0;
      for (int i = 1; i < logits.length; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      return best;
    }
    float threshold = Float.NEGATIVE_INFINITY;
    if (s.topK() > 0 && s.topK() < logits.length) {
      float[] sorted = logits.clone();
      Arrays.sort(sorted);
      threshold = sorted[sorted.length - s.topK()];
    }
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < logits.length; i++) {
      p[i] = logits[i] >= threshold ? Math.exp((logits[i] - max) / s.temperature()) : 0;
      sum += p[i];
    }
    double r = random.nextDouble() * sum;
    for (int i = 0; i < p.length; i++) {
      r -= p[i];
      if (r <= 0 && p[i] > 0) {
        return i;
      }
    }
    return argmax(p);
  }

  private static int argmax(double[] p) {
    int best = 0;
    for (int i = 1; i < p.length; i++) {
      if (p[i] > p[best]) {
        best = i;
      }
    }
    return best;
  }
}
