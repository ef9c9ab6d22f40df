package dev.compactor.core.metrics;

/**
 * Language-modelling quality of a model on a text.
 *
 * @param tokens tokens scored
 * @param nll mean negative log-likelihood per scored token, in nats
 * @param perplexity {@code exp(nll)}
 * @param bitsPerByte total negative log-likelihood in bits divided by the UTF-8 bytes scored;
 *     comparable across tokenizers
 * @param bytes UTF-8 bytes the scored tokens stand for
 * @param seconds wall time of the model passes
 * @param tokensPerSecond scored tokens per second of wall time
 */
public record PerplexityResult(
    long tokens,
    double nll,
    double perplexity,
    double bitsPerByte,
    long bytes,
    double seconds,
    double tokensPerSecond) {}
