package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.WeightTransform;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What {@link Distiller} trains: the arrays its optimizer updates (and checkpoints) and the forward
 * whose graph reaches them. A plain student trains every weight of its model; a low-rank adapter
 * trains only its adapter matrices over a frozen model; quantization-aware training trains the
 * weights and scales seen through fake quantization.
 */
public interface Trainable {

  /** The model being trained (vocabulary, context, device). */
  Transformer model();

  /** The arrays the optimizer updates, by a stable name (checkpoints are keyed by it). */
  Map<String, NDArray> parameters();

  /** Training logits {@code [batch, seq, vocab]}, every intermediate kept in {@code manager}. */
  NDArray forward(NDManager manager, NDArray tokens);

  /**
   * Training logits like {@link #forward(NDManager, NDArray)}, also adding each decoder layer's
   * output ({@code [batch, seq, hidden]}) to {@code hidden} in layer order: the student side of
   * hidden-state distillation.
   */
  default NDArray forward(NDManager manager, NDArray tokens, List<NDArray> hidden) {
    throw new UnsupportedOperationException(
        "not supported yet: hidden states of " + getClass().getName());
  }

  /**
   * Parameters whose exact zeros must stay zero through training (pruned weights), by default the
   * decoder linear weights among {@link #parameters()} that hold any exact zero.
   */
  default Set<String> keepZeros() {
    return Distiller.prunedWeights(parameters());
  }

  /** Every weight of {@code model}, trained through its plain forward. */
  static Trainable of(Transformer model) {
    return new Trainable() {
      @Override
      public Transformer model() {
        return model;
      }

      @Override
      public Map<String, NDArray> parameters() {
        return model.parameters();
      }

      @Override
      public NDArray forward(NDManager manager, NDArray tokens) {
        return model.forward(manager, tokens);
      }

      @Override
      public NDArray forward(NDManager manager, NDArray tokens, List<NDArray> hidden) {
        return model.forward(manager, tokens, null, hidden);
      }
    };
  }

  /**
   * {@code parameters} trained through {@code model}'s forward with {@code transform} applied to
   * its decoder layer tensors (the model's own weights are trained only if they are among {@code
   * parameters}).
   */
  static Trainable through(
      Transformer model, Map<String, NDArray> parameters, WeightTransform transform) {
    return new Trainable() {
      @Override
      public Transformer model() {
        return model;
      }

      @Override
      public Map<String, NDArray> parameters() {
        return parameters;
      }

      @Override
      public NDArray forward(NDManager manager, NDArray tokens) {
        return model.forward(manager, tokens, transform);
      }

      @Override
      public NDArray forward(NDManager manager, NDArray tokens, List<NDArray> hidden) {
        return model.forward(manager, tokens, transform, hidden);
      }
    };
  }
}
