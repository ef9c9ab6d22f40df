package dev.compactor.core.cascade;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;
import java.util.Arrays;

/**
 * Greedy generation by a token-level cascade: each new token is the small model's argmax unless the
 * small model's confidence at that step defers it, then the large model's argmax. Both models keep
 * a KV cache. The small model is fed every token (its own and the large model's); the large model
 * is fed lazily: at a deferred step it feeds, in one pass, every token since its last call, so its
 * cache always ends at the deferred position. What is counted: the positions each model was fed,
 * the large model's calls and the FLOPs of both ({@link ModelFlops#span}).
 */
public final class GreedyCascade {

  /**
   * One generation.
   *
   * @param tokens the new tokens (the prompt not included)
   * @param deferred how many of them the large model chose
   * @param largeCalls forward calls of the large model (one per deferred token)
   * @param largePositions positions the large model was fed
   * @param smallFlops FLOPs of the small model
   * @param largeFlops FLOPs of the large model
   * @param nanos wall time of the whole generation
   */
  public record Result(
      int[] tokens,
      int deferred,
      int largeCalls,
      int largePositions,
      long smallFlops,
      long largeFlops,
      long nanos) {}

  private GreedyCascade() {}

  /** Up to {@code maxTokens} tokens after {@code prompt} (fewer when a context fills). */
  public static Result generate(
      CausalLM small,
      CausalLM large,
      ModelFlops smallShape,
      ModelFlops largeShape,
      int[] prompt,
      int maxTokens,
      ConfidenceSignal signal,
      double threshold) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt must hold at least one token");
    }
    int limit = Math.min(small.maxSequenceLength(), large.maxSequenceLength());
    int budget = Math.max(0, Math.min(maxTokens, limit - prompt.length));
    int vocab = small.vocabSize();
    int[] seq = Arrays.copyOf(prompt, prompt.length + budget);
    int len = prompt.length;
    int largeFed = 0;
    int deferred = 0;
    long smallF = 0;
    long largeF = 0;
    long start = System.nanoTime();
    try (NDManager m = NDManager.newBaseManager();
        CausalLM.Decoder s = small.decoder(m, 1);
        CausalLM.Decoder l = large.decoder(m, 1)) {
      int smallFed = 0;
      for (int n = 0; n < budget; n++) {
        float[] row = lastRow(s, m, seq, smallFed, len);
        smallF += smallShape.span(smallFed, len);
        smallFed = len;
        int next = CascadeRecords.argmax(row, 0, vocab);
        if (signal.defers(signal.of(ConfidenceSignal.Signals.ofLogits(row, 0, vocab)), threshold)) {
          float[] big = lastRow(l, m, seq, largeFed, len);
          largeF += largeShape.span(largeFed, len);
          largeFed = len;
          next = CascadeRecords.argmax(big, 0, vocab);
          deferred++;
        }
        seq[len++] = next;
      }
      return new Result(
          Arrays.copyOfRange(seq, prompt.length, len),
          deferred,
          deferred,
          largeFed,
          smallF,
          largeF,
          System.nanoTime() - start);
    }
  }

  /** Feeds {@code seq[from, to)} and returns the logits of position {@code to - 1}. */
  private static float[] lastRow(CausalLM.Decoder d, NDManager m, int[] seq, int from, int to) {
    try (NDManager step = m.newSubManager()) {
      int[] feed = Arrays.copyOfRange(seq, from, to);
      NDArray out = d.step(step.create(feed, new Shape(1, feed.length)));
      out.attach(step);
      return out.get(0, feed.length - 1).toFloatArray();
    }
  }
}
