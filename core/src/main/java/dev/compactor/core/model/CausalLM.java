package dev.compactor.core.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * A causal language model: token ids in, next-token logits out. Metrics, calibration, distillation
 * and the CLI are written against this interface, so the all-resident and the layer-by-layer
 * (streaming) implementations are interchangeable.
 */
public interface CausalLM extends AutoCloseable {

  /** Size of the output distribution. */
  int vocabSize();

  /** Longest sequence the model accepts (context length). */
  int maxSequenceLength();

  /**
   * Next-token logits for every position: {@code tokens} is an integer array {@code [batch, seq]};
   * the result is fp32 {@code [batch, seq, vocab]}, attached to {@code manager}.
   */
  NDArray logits(NDManager manager, NDArray tokens);

  /**
   * Logits like {@link #logits(NDManager, NDArray)}, also adding each decoder layer's output (the
   * residual stream after layer {@code i}, {@code [batch, seq, hidden]}) to {@code hidden} in layer
   * order, every array attached to {@code manager}: the teacher side of hidden-state distillation.
   */
  default NDArray logitsWithHidden(NDManager manager, NDArray tokens, List<NDArray> hidden) {
    throw new UnsupportedOperationException(
        "not supported yet: hidden states of " + getClass().getSimpleName());
  }

  /**
   * Starts incremental decoding with a KV cache for {@code batch} sequences. Arrays the decoder
   * creates live in {@code manager}.
   */
  Decoder decoder(NDManager manager, int batch);

  /** Incremental decoding state (the KV cache) of one or more sequences. */
  interface Decoder extends AutoCloseable {

    /**
     * Feeds {@code tokens} ({@code [batch, n]}, the prompt for the first call, usually one token
     * per sequence afterwards) and returns the logits of those positions, {@code [batch, n,
     * vocab]}.
     */
    NDArray step(NDArray tokens);

    /** Number of positions already in the cache. */
    int position();

    @Override
    void close();
  }

  @Override
  void close();
}
