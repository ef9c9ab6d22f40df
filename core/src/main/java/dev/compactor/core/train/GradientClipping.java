package dev.compactor.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Collection;

/**
 * Global-norm gradient clipping, as {@code torch.nn.utils.clip_grad_norm_}: when the L2 norm of all
 * gradients together exceeds {@code maxNorm}, every gradient is scaled by {@code maxNorm / (norm +
 * 1e-6)}. Keeps one bad batch from blowing up training.
 */
public final class GradientClipping {

  private GradientClipping() {}

  /**
   * Clips the gradients of {@code parameters} in place; returns the global norm before clipping.
   * Call outside a {@code GradientCollector}.
   */
  public static double clipGlobalNorm(Collection<NDArray> parameters, double maxNorm) {
    if (!(maxNorm > 0)) {
      throw new IllegalArgumentException("maxNorm must be > 0, was " + maxNorm);
    }
    if (parameters.isEmpty()) {
      return 0;
    }
    try (NDManager scope = parameters.iterator().next().getManager().newSubManager()) {
      double sumSquares = 0;
      for (NDArray p : parameters) {
        NDArray g = p.getGradient();
        g.attach(scope);
        NDArray sq = g.square().sum();
        sumSquares += sq.getFloat();
      }
      double norm = Math.sqrt(sumSquares);
      double coef = maxNorm / (norm + 1e-6);
      if (coef < 1) {
        for (NDArray p : parameters) {
          NDArray g = p.getGradient();
          g.attach(scope);
          g.muli((float) coef);
        }
      }
      return norm;
    }
  }
}
