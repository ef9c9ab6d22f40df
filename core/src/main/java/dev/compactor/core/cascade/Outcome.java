package dev.compactor.core.cascade;

/**
 * What both models did on one item (a request, or one token of a sequence), enough to evaluate any
 * threshold without running a model again.
 *
 * @param group the sequence a token belongs to (its own index for a request)
 * @param small the small model's confidence on the item
 * @param smallQuality the small model's quality (1/0 for accuracy, NLL in nats)
 * @param largeQuality the large model's quality
 * @param smallFlops the small model's FLOPs on the item
 * @param largeFlops the large model's FLOPs on the item (for a token: its marginal cost with a KV
 *     cache of the earlier tokens)
 * @param smallSeconds measured wall time of the small model on the item
 * @param largeSeconds measured wall time of the large model on the item
 */
public record Outcome(
    int group,
    ConfidenceSignal.Signals small,
    double smallQuality,
    double largeQuality,
    double smallFlops,
    double largeFlops,
    double smallSeconds,
    double largeSeconds) {}
