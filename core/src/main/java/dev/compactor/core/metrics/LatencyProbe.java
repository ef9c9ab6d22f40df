package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;

/**
 * Measures how fast a model answers one request: prefill time per prompt token and greedy decode
 * speed with the KV cache ({@link CausalLM#decoder}). A short warm-up run first keeps one-off costs
 * (native library start, allocator growth) out of the figures.
 */
public final class LatencyProbe {

  private final int promptTokens;
  private final int decodeTokens;

  public LatencyProbe(int promptTokens, int decodeTokens) {
    if (promptTokens < 1 || decodeTokens < 1) {
      throw new IllegalArgumentException(
          "expected promptTokens >= 1 and decodeTokens >= 1, found "
              + promptTokens
              + " and "
              + decodeTokens);
    }
    this.promptTokens = promptTokens;
    this.decodeTokens = decodeTokens;
  }

  /** Prefills the first {@code promptTokens} of {@code source}, then decodes greedily. */
  public LatencyResult measure(CausalLM model, int[] source) {
    if (source.length < promptTokens) {
      throw new IllegalArgumentException(
          "expected at least " + promptTokens + " prompt tokens, found " + source.length);
    }
    if (promptTokens + decodeTokens > model.maxSequenceLength()) {
      throw new IllegalArgumentException(
          "prompt "
              + promptTokens
              + " + decode "
              + decodeTokens
              + " tokens exceed the model's context length "
              + model.maxSequenceLength());
    }
    int[] prompt = java.util.Arrays.copyOf(source, promptTokens);
    run(model, java.util.Arrays.copyOf(prompt, Math.min(8, promptTokens)), 2);
    long[] nanos = run(model, prompt, decodeTokens);
    return new LatencyResult(
        promptTokens, nanos[0] / 1e6 / promptTokens, decodeTokens, decodeTokens / (nanos[1] / 1e9));
  }

  /** Returns {prefill nanos, decode nanos}. */
  private static long[] run(CausalLM model, int[] prompt, int steps) {
    try (NDManager m = NDManager.newBaseManager();
        CausalLM.Decoder decoder = model.decoder(m, 1)) {
      long t0 = System.nanoTime();
      NDArray logits = decoder.step(m.create(prompt, new Shape(1, prompt.length)));
      int next = argMaxLast(logits);
      long t1 = System.nanoTime();
      for (int i = 0; i < steps; i++) {
        try (NDManager step = m.newSubManager()) {
          NDArray in = step.create(new int[] {next}, new Shape(1, 1));
          NDArray out = decoder.step(in);
          out.attach(step);
          next = argMaxLast(out);
        }
      }
      long t2 = System.nanoTime();
      return new long[] {t1 - t0, t2 - t1};
    }
  }

  private static int argMaxLast(NDArray logits) {
    long n = logits.getShape().get(1);
    return (int) logits.get(new NDIndex("0, {}, :", n - 1)).argMax().getLong();
  }
}
