package dev.compactor.core.cascade;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;

/**
 * The routing policy published with a compressed model: defer to the large model when the small
 * model's {@code signal} is below (entropy: above) {@code threshold}, at the given granularity, and
 * what that was measured to give.
 *
 * @param threshold the threshold; null when the small model alone meets the target (never defer)
 * @param target the quality target it was chosen for (quality ratio to the large model)
 * @param point the curve's figures at that threshold
 * @param measuredOn what the figures were measured on
 */
public record RoutingPolicy(
    ConfidenceSignal signal,
    Granularity granularity,
    QualityMetric metric,
    Double threshold,
    double target,
    RoutingCurve.Point point,
    String measuredOn) {

  /** The file name the policy is stored under beside a model. */
  public static final String FILE_NAME = "routing_policy.json";

  /** The cheapest threshold of {@code curve} meeting {@code target}; empty when none does. */
  public static Optional<RoutingPolicy> choose(RoutingCurve curve, double target) {
    return curve
        .select(target)
        .map(
            p ->
                new RoutingPolicy(
                    curve.signal(),
                    curve.granularity(),
                    curve.metric(),
                    Double.isNaN(p.threshold()) ? null : p.threshold(),
                    target,
                    p,
                    curve.measuredOn()));
  }

  /** The policy as the JSON document stored beside the model. */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("signal", signal.id());
    if (threshold == null) {
      o.putNull("threshold");
    } else {
      o.put("threshold", threshold);
    }
    o.put(
        "defer_when",
        threshold == null
            ? "never (the small model alone meets the target)"
            : signal == ConfidenceSignal.ENTROPY
                ? signal.id() + " > threshold"
                : signal.id() + " < threshold");
    o.put("granularity", granularity.id())
        .put("quality_metric", metric.id())
        .put("quality_target", target)
        .put("expected_fraction_routed", point.fractionRouted())
        .put("expected_quality", point.quality())
        .put("expected_quality_ratio", point.qualityRatio())
        .put("expected_cost_fraction", point.costFraction())
        .put("measured_on", measuredOn);
    return o;
  }
}
