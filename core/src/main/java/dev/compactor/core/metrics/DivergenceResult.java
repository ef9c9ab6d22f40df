package dev.compactor.core.metrics;

/**
 * How far a compressed model's next-token distributions moved from the baseline's, over the same
 * tokens (the figures llama.cpp's {@code --kl-divergence} reports).
 *
 * @param tokens positions compared
 * @param klDivergence mean over positions of KL(P_baseline ‖ Q_model), in nats
 * @param klMax largest per-position KL seen
 * @param top1Agreement fraction of positions where both models' most likely token is the same
 * @param baselineNll baseline's mean negative log-likelihood of the actual next tokens (nats)
 * @param modelNll compressed model's mean negative log-likelihood of the same tokens (nats)
 */
public record DivergenceResult(
    long tokens,
    double klDivergence,
    double klMax,
    double top1Agreement,
    double baselineNll,
    double modelNll) {

  public double baselinePerplexity() {
    return Math.exp(baselineNll);
  }

  public double modelPerplexity() {
    return Math.exp(modelNll);
  }
}
