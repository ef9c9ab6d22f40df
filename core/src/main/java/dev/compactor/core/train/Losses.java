package dev.compactor.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;

/**
 * Loss functions of logits written without scalar-number ops (DJL frees the temporary scalar of
 * {@code mul(Number)} while autograd still needs it), so they are safe inside a gradient collector.
 */
public final class Losses {

  private Losses() {}

  /**
   * Mean next-token cross entropy: position {@code t}'s logits ({@code [B, T, V]}) predict token
   * {@code t+1} of {@code tokens} ({@code [B, T]}); the last position has no target. Same value as
   * {@code F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))}.
   */
  public static NDArray nextTokenCrossEntropy(NDArray logits, NDArray tokens) {
    long seq = logits.getShape().get(1);
    if (seq < 2) {
      throw new IllegalArgumentException(
          "next-token loss needs sequences of >= 2 tokens, got " + seq);
    }
    NDArray predictions = logits.get(new NDIndex(":, :-1, :"));
    NDArray next = tokens.get(new NDIndex(":, 1:"));
    next.attach(logits.getManager());
    NDArray targets = next.toType(DataType.INT64, false);
    NDArray logProbs = predictions.logSoftmax(2);
    return logProbs.gather(targets.expandDims(2), 2).mean().neg();
  }
}
