package dev.compactor.core.cascade;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One cascade measurement: the routing curve of a small and a large model on a request set, the
 * policy for a quality target, and (per request) a response cache's hit rate on Zipf query logs
 * over the set's prompts, what the CLI prints and the evaluate step records.
 *
 * @param curve the routing curve
 * @param policy the cheapest threshold meeting the target; empty when none does
 * @param cache cache figures for {@link #CACHE_EXPONENTS}, per request only (else empty)
 */
public record CascadeStudy(
    RoutingCurve curve, double target, Optional<RoutingPolicy> policy, List<CacheFigures> cache) {

  /**
   * Zipf exponents of the query logs (0 = uniform): the hit rate depends on the log, so several are
   * shown.
   */
  public static final double[] CACHE_EXPONENTS = {0, 0.6, 1.0, 1.2};

  /**
   * Queries per log, as a multiple of the distinct prompts: a log as long as its pool, so that with
   * uniform draws {@code 1/e} (36.8 %) of the queries would be repeats.
   */
  public static final int CACHE_LOG_PER_PROMPT = 1;

  /** Share of a log's queries sent as surface variants (case, spaces). */
  public static final double CACHE_VARIANT_RATE = 0.1;

  /** Quantile steps of the default threshold grid. */
  public static final int DEFAULT_STEPS = 10;

  /** What to measure. */
  public record Settings(
      ConfidenceSignal signal, Granularity granularity, double target, double[] thresholds) {
    public Settings {
      if (!(target > 0)) {
        throw new IllegalArgumentException("the quality target must be > 0, found " + target);
      }
    }
  }

  /** What a request is on held-out text. */
  public enum TextRequests {
    /** A window is the prompt, its next token the answer (NLL of the true token). */
    NEXT_TOKEN,
    /** A window is scored whole (its tokens' mean NLL; confidence their mean signal). */
    WINDOW;

    public String id() {
      return this == NEXT_TOKEN ? "next-token" : "window";
    }

    public static TextRequests of(String id) {
      for (TextRequests r : values()) {
        if (r.id().equals(id.strip())) {
          return r;
        }
      }
      throw new IllegalArgumentException(
          "unknown text request kind '" + id + "'; expected next-token or window");
    }
  }

  /**
   * On held-out {@code tokens} cut into windows: per token (each token's NLL, the large model's
   * cache catching up), or per request, a request being a window's next token or a whole window.
   */
  public static CascadeStudy onText(
      CausalLM small,
      CausalLM large,
      ModelFlops smallFlops,
      ModelFlops largeFlops,
      TextTokenizer tokenizer,
      int[] tokens,
      int seqLen,
      int windows,
      String textName,
      TextRequests requests,
      Settings s,
      ProgressListener progress) {
    List<Outcome> perToken =
        CascadeRecords.tokens(
            small, large, smallFlops, largeFlops, tokens, seqLen, windows, progress);
    int groups = perToken.get(perToken.size() - 1).group() + 1;
    int len = perToken.size() / groups;
    String on =
        groups + " windows of " + len + " tokens of " + textName + ", next-token NLL (nats)";
    if (s.granularity() == Granularity.TOKEN) {
      return of(perToken, QualityMetric.NLL, on + ", per token", s, null);
    }
    List<String> prompts = new ArrayList<>();
    for (int g = 0; g < groups; g++) {
      int[] w = new int[len];
      System.arraycopy(tokens, g * len, w, 0, len);
      prompts.add(tokenizer.decode(w, true));
    }
    return requests == TextRequests.WINDOW
        ? of(CascadeRecords.windows(perToken), QualityMetric.NLL, on + ", per window", s, prompts)
        : of(
            CascadeRecords.nextTokenRequests(perToken),
            QualityMetric.NLL,
            on + ", one next-token request per window",
            s,
            prompts);
  }

  /** On task documents: lm-eval {@code acc} per document (per request only). */
  public static CascadeStudy onTask(
      CausalLM small,
      CausalLM large,
      ModelFlops smallFlops,
      ModelFlops largeFlops,
      TextTokenizer tokenizer,
      String task,
      List<TaskDoc> docs,
      Settings s,
      ProgressListener progress) {
    if (s.granularity() != Granularity.REQUEST) {
      throw new UnsupportedOperationException(
          "not supported: granularity="
              + s.granularity().id()
              + " on a task (per-token routing is"
              + " measured on text windows)");
    }
    List<Outcome> o =
        CascadeRecords.tasks(small, large, smallFlops, largeFlops, tokenizer, docs, progress);
    List<String> prompts = docs.stream().map(TaskDoc::context).toList();
    return of(
        o, QualityMetric.ACCURACY, docs.size() + " documents of " + task + ", acc", s, prompts);
  }

  private static CascadeStudy of(
      List<Outcome> o, QualityMetric metric, String on, Settings s, List<String> prompts) {
    double[] t =
        s.thresholds() != null
            ? s.thresholds()
            : RoutingCurve.quantileThresholds(o, s.signal(), DEFAULT_STEPS);
    RoutingCurve curve = RoutingCurve.compute(o, s.granularity(), metric, s.signal(), t, on);
    Optional<RoutingPolicy> policy = RoutingPolicy.choose(curve, s.target());
    List<CacheFigures> cache = new ArrayList<>();
    if (prompts != null) {
      double threshold =
          policy.map(p -> p.threshold() == null ? Double.NaN : p.threshold()).orElse(Double.NaN);
      double[] costs =
          Double.isNaN(threshold)
              ? o.stream()
                  // never defer (small alone) or, with no policy, the large model alone
                  .mapToDouble(x -> policy.isPresent() ? x.smallFlops() : x.largeFlops())
                  .toArray()
              : RoutingCurve.requestCosts(o, s.signal(), threshold);
      for (double e : CACHE_EXPONENTS) {
        cache.add(
            CacheFigures.measure(
                prompts, costs, CACHE_LOG_PER_PROMPT * prompts.size(), e, CACHE_VARIANT_RATE, 0));
      }
    }
    return new CascadeStudy(curve, s.target(), policy, List.copyOf(cache));
  }

  /**
   * The evaluate step's figures, keys {@code cascade.*}: the policy's threshold, fraction routed,
   * quality, quality ratio and cost fraction ({@code cascade.targetMet} 0 and the large model's
   * figures when no threshold meets the target), the small model's ratio and cost fraction, and the
   * normalised cache's hit rate on the Zipf-1.0 log.
   */
  public Map<String, Double> metrics() {
    Map<String, Double> m = new LinkedHashMap<>();
    RoutingCurve.Point p = policy.map(RoutingPolicy::point).orElse(curve.largeAlone());
    m.put("cascade.targetMet", policy.isPresent() ? 1.0 : 0.0);
    m.put("cascade.target", target);
    policy.ifPresent(x -> m.put("cascade.threshold", x.threshold()));
    m.put("cascade.fractionRouted", p.fractionRouted());
    m.put("cascade.quality", p.quality());
    m.put("cascade.qualityRatio", p.qualityRatio());
    m.put("cascade.costFraction", p.costFraction());
    m.put("cascade.largeWorkFraction", p.largeWorkFraction());
    m.put("cascade.smallQualityRatio", curve.smallAlone().qualityRatio());
    m.put("cascade.smallCostFraction", curve.smallAlone().costFraction());
    m.put("cascade.largeQuality", curve.largeAlone().quality());
    m.put("cascade.items", (double) curve.items());
    for (CacheFigures c : cache) {
      if (c.exponent() == 1.0) {
        m.put("cascade.cacheHitRate", c.normalised().hitRate());
        m.put("cascade.cacheExactHitRate", c.exact().hitRate());
        m.put("cascade.cacheFlopsSaved", c.flopsSavedFraction());
      }
    }
    m.values().removeIf(v -> v == null || v.isNaN() || v.isInfinite());
    return m;
  }

  /** Curve, target, policy (null when none) and cache figures. */
  public ObjectNode toJson() {
    ObjectNode o = curve.toJson();
    o.put("target", target);
    if (policy.isPresent()) {
      o.set("policy", policy.get().toJson());
    } else {
      o.putNull("policy");
    }
    ArrayNode a = o.putArray("cache");
    cache.forEach(c -> a.add(c.toJson()));
    return o;
  }
}
