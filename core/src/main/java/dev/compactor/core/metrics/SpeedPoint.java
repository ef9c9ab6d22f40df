package dev.compactor.core.metrics;

/**
 * Speed of one batch size and context length: speeds are the median over the sweep's repeats,
 * energy is the joules of all repeats over all their tokens.
 *
 * @param batch sequences decoded together
 * @param contextLength prompt tokens per sequence (the prefill)
 * @param decodeTokens tokens generated per sequence after the prompt, one step at a time
 * @param prefillTokensPerSecond {@code batch × contextLength} over the prefill's wall time
 * @param decodeTokensPerSecond {@code batch × decodeTokens} over the decode's wall time
 * @param peakRssBytes the process's peak resident memory while this configuration ran (the models'
 *     weights included), -1 where the high-water mark cannot be reset ({@link PeakMemory})
 * @param prefillJoulesPerToken energy of the prefill per prompt token, NaN without a meter
 * @param decodeJoulesPerToken energy of the decode per generated token, NaN without a meter
 */
public record SpeedPoint(
    int batch,
    int contextLength,
    int decodeTokens,
    double prefillTokensPerSecond,
    double decodeTokensPerSecond,
    long peakRssBytes,
    double prefillJoulesPerToken,
    double decodeJoulesPerToken) {

  /** The same figures as the single-sequence {@link LatencyResult}. */
  public LatencyResult asLatency() {
    return new LatencyResult(
        contextLength, 1000.0 / prefillTokensPerSecond, decodeTokens, decodeTokensPerSecond);
  }
}
