package dev.compactor.core.metrics;

/**
 * Single-sequence inference speed.
 *
 * @param promptTokens tokens in the prefill
 * @param prefillMsPerToken prefill wall time divided by the prompt length
 * @param decodeTokens tokens generated one at a time after the prompt
 * @param decodeTokensPerSecond generated tokens per second of wall time
 */
public record LatencyResult(
    int promptTokens, double prefillMsPerToken, int decodeTokens, double decodeTokensPerSecond) {}
