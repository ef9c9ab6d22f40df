package dev.compactor.core.cascade;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * Quality, fraction routed and cost of a cascade over a grid of thresholds, computed from per-item
 * {@link Outcome}s (both models ran every item once, so no threshold needs another model run).
 *
 * <p>Cost accounting. The small model runs on every item. Per request, a deferred request costs the
 * large model's full pass on it as well. Per token, the large model keeps a KV cache that it fills
 * lazily: at a deferred token it feeds every token since its last call (one batched pass), so a
 * sequence costs the large model its FLOPs up to its last deferred token, not only the deferred
 * tokens; {@code largeWorkFraction} is that share of the tokens. The large model alone costs its
 * FLOPs on every item without the small model. Wall time is summed from the measured per-item times
 * the same way (per token: each model's time per window shared evenly among its tokens).
 *
 * @param items number of items (requests or tokens)
 * @param measuredOn what the items were, for the record
 * @param smallAlone the small model answering everything
 * @param largeAlone the large model answering everything (without the small model's cost)
 * @param points one per threshold, in the grid's order
 */
public record RoutingCurve(
    ConfidenceSignal signal,
    Granularity granularity,
    QualityMetric metric,
    int items,
    String measuredOn,
    Point smallAlone,
    Point largeAlone,
    List<Point> points) {

  /**
   * One threshold's figures, per item.
   *
   * @param fractionRouted share of items the large model answered
   * @param quality mean quality (accuracy, or NLL in nats)
   * @param qualityRatio quality relative to the large model alone ({@link QualityMetric#ratio})
   * @param flops mean FLOPs per item, both models
   * @param costFraction FLOPs relative to the large model alone
   * @param seconds mean measured wall time per item, both models
   * @param largeWorkFraction share of items the large model processed (per token: with its cache
   *     catching up; per request: equals fractionRouted)
   * @param randomQuality the expected quality of routing the same share of items at random, the
   *     reference a confidence signal has to beat to be worth anything
   */
  public record Point(
      double threshold,
      double fractionRouted,
      double quality,
      double qualityRatio,
      double flops,
      double costFraction,
      double seconds,
      double largeWorkFraction,
      double randomQuality) {

    Point withoutThreshold() {
      return new Point(
          Double.NaN,
          fractionRouted,
          quality,
          qualityRatio,
          flops,
          costFraction,
          seconds,
          largeWorkFraction,
          randomQuality);
    }
  }

  /** The curve of {@code outcomes} at {@code thresholds}. */
  public static RoutingCurve compute(
      List<Outcome> outcomes,
      Granularity granularity,
      QualityMetric metric,
      ConfidenceSignal signal,
      double[] thresholds,
      String measuredOn) {
    if (outcomes.isEmpty()) {
      throw new IllegalArgumentException("a routing curve needs at least one item");
    }
    int n = outcomes.size();
    double largeQ = 0;
    double largeF = 0;
    double largeS = 0;
    for (Outcome o : outcomes) {
      largeQ += o.largeQuality();
      largeF += o.largeFlops();
      largeS += o.largeSeconds();
    }
    Point large =
        new Point(
            Double.NaN,
            1,
            largeQ / n,
            metric.ratio(largeQ / n, largeQ / n),
            largeF / n,
            1,
            largeS / n,
            1,
            largeQ / n);
    Point small =
        evaluate(outcomes, granularity, metric, signal, neverDefers(signal), large)
            .withoutThreshold();
    List<Point> points = new ArrayList<>();
    for (double t : thresholds) {
      points.add(evaluate(outcomes, granularity, metric, signal, t, large));
    }
    return new RoutingCurve(
        signal, granularity, metric, n, measuredOn, small, large, List.copyOf(points));
  }

  private static double neverDefers(ConfidenceSignal s) {
    return s == ConfidenceSignal.ENTROPY ? Double.POSITIVE_INFINITY : Double.NEGATIVE_INFINITY;
  }

  private static Point evaluate(
      List<Outcome> outcomes,
      Granularity granularity,
      QualityMetric metric,
      ConfidenceSignal signal,
      double threshold,
      Point large) {
    int n = outcomes.size();
    double q = 0;
    double flops = 0;
    double seconds = 0;
    int routed = 0;
    long largeItems = 0;
    int i = 0;
    while (i < n) {
      int end = i + 1;
      if (granularity == Granularity.TOKEN) {
        while (end < n && outcomes.get(end).group() == outcomes.get(i).group()) {
          end++;
        }
      }
      int lastDeferred = -1;
      for (int k = i; k < end; k++) {
        Outcome o = outcomes.get(k);
        boolean defer = signal.defers(signal.of(o.small()), threshold);
        q += defer ? o.largeQuality() : o.smallQuality();
        flops += o.smallFlops();
        seconds += o.smallSeconds();
        if (defer) {
          routed++;
          lastDeferred = k;
        }
      }
      // per request end == i + 1, so the large model runs on exactly the deferred request
      for (int k = i; k <= lastDeferred; k++) {
        flops += outcomes.get(k).largeFlops();
        seconds += outcomes.get(k).largeSeconds();
        largeItems++;
      }
      i = end;
    }
    double quality = q / n;
    double f = (double) routed / n;
    double smallQ = 0;
    for (Outcome o : outcomes) {
      smallQ += o.smallQuality();
    }
    return new Point(
        threshold,
        (double) routed / n,
        quality,
        metric.ratio(quality, large.quality()),
        flops / n,
        flops / n / large.flops(),
        seconds / n,
        (double) largeItems / n,
        (1 - f) * smallQ / n + f * large.quality());
  }

  /**
   * Thresholds that route about {@code 0, 1/steps, ..., 1} of the items: quantiles of the small
   * model's signal on them (ties make some fractions coarser).
   */
  public static double[] quantileThresholds(
      List<Outcome> outcomes, ConfidenceSignal signal, int steps) {
    if (steps < 1) {
      throw new IllegalArgumentException("steps must be at least 1, found " + steps);
    }
    double[] v = outcomes.stream().mapToDouble(o -> signal.of(o.small())).sorted().toArray();
    int n = v.length;
    double[] t = new double[steps + 1];
    for (int s = 0; s <= steps; s++) {
      int k = (int) Math.round((double) s * n / steps); // items to defer
      if (signal == ConfidenceSignal.ENTROPY) {
        // defer when value > t: the k largest values
        t[s] = k == 0 ? v[n - 1] : k == n ? Math.nextDown(v[0]) : v[n - 1 - k];
      } else {
        // defer when value < t: the k smallest values
        t[s] = k == 0 ? v[0] : k == n ? Math.nextUp(v[n - 1]) : v[k];
      }
    }
    return Arrays.stream(t).distinct().toArray();
  }

  /**
   * The threshold of this curve that meets {@code target} (quality ratio to the large model at
   * least {@code target}) at the lowest FLOPs; the small model alone counts as a threshold that
   * never defers. Empty when no point meets it.
   */
  public Optional<Point> select(double target) {
    Point best = smallAlone.qualityRatio() >= target ? smallAlone : null;
    for (Point p : points) {
      if (p.qualityRatio() >= target && (best == null || p.flops() < best.flops())) {
        best = p;
      }
    }
    return Optional.ofNullable(best);
  }

  /**
   * Per-request cost of each item at {@code threshold}: the small model's FLOPs, plus the large
   * model's when the item is deferred (request granularity only).
   */
  public static double[] requestCosts(
      List<Outcome> outcomes, ConfidenceSignal signal, double threshold) {
    double[] c = new double[outcomes.size()];
    for (int i = 0; i < c.length; i++) {
      Outcome o = outcomes.get(i);
      boolean defer = signal.defers(signal.of(o.small()), threshold);
      c[i] = o.smallFlops() + (defer ? o.largeFlops() : 0);
    }
    return c;
  }

  /** The curve as JSON (NaN figures left out). */
  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("signal", signal.id())
        .put("granularity", granularity.id())
        .put("metric", metric.id())
        .put("items", items)
        .put("measured_on", measuredOn);
    o.set("small_alone", json(smallAlone));
    o.set("large_alone", json(largeAlone));
    ArrayNode a = o.putArray("points");
    points.forEach(p -> a.add(json(p)));
    return o;
  }

  static ObjectNode json(Point p) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    put(o, "threshold", p.threshold());
    put(o, "fraction_routed", p.fractionRouted());
    put(o, "quality", p.quality());
    put(o, "quality_ratio", p.qualityRatio());
    put(o, "flops", p.flops());
    put(o, "cost_fraction", p.costFraction());
    put(o, "seconds", p.seconds());
    put(o, "large_work_fraction", p.largeWorkFraction());
    put(o, "random_routing_quality", p.randomQuality());
    return o;
  }

  private static void put(ObjectNode o, String k, double v) {
    if (!Double.isNaN(v) && !Double.isInfinite(v)) {
      o.put(k, v);
    }
  }
}
