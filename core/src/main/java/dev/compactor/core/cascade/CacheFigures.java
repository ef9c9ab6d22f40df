package dev.compactor.core.cascade;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * A response cache's hit rate on a {@link QueryLog} built from a request set's prompts, and the
 * FLOPs it saves: a hit skips the request's cascade cost at the policy's threshold (an unbounded
 * cache; the prompts' Zipf ranks follow their order in the request set).
 *
 * @param prompts distinct prompts the log draws from
 * @param exponent the log's Zipf exponent
 * @param variantRate share of queries sent as a surface variant
 * @param seed the log's seed
 * @param exact hits of an exact-text cache
 * @param normalised hits of a normalised-text cache
 * @param flopsSavedFraction share of the log's cascade FLOPs the normalised cache saves
 */
public record CacheFigures(
    int prompts,
    double exponent,
    double variantRate,
    long seed,
    ResponseCache.Replay exact,
    ResponseCache.Replay normalised,
    double flopsSavedFraction) {

  /**
   * Replays a log of {@code length} queries over {@code prompts}; {@code costs[i]} is the cost of
   * answering prompt {@code i}.
   */
  public static CacheFigures measure(
      List<String> prompts,
      double[] costs,
      int length,
      double exponent,
      double variantRate,
      long seed) {
    if (costs.length != prompts.size()) {
      throw new IllegalArgumentException(
          "expected one cost per prompt (" + prompts.size() + "), found " + costs.length);
    }
    List<String> log = QueryLog.zipf(prompts, length, exponent, variantRate, seed);
    java.util.Map<String, Integer> index = new java.util.HashMap<>();
    for (int i = 0; i < prompts.size(); i++) {
      index.putIfAbsent(ResponseCache.normalise(prompts.get(i)), i);
    }
    java.util.Set<String> seen = new java.util.HashSet<>();
    double total = 0;
    double saved = 0;
    for (String q : log) {
      String key = ResponseCache.normalise(q);
      double c = costs[index.get(key)];
      total += c;
      if (!seen.add(key)) {
        saved += c;
      }
    }
    return new CacheFigures(
        prompts.size(),
        exponent,
        variantRate,
        seed,
        ResponseCache.replay(log, ResponseCache.Key.EXACT),
        ResponseCache.replay(log, ResponseCache.Key.NORMALISED),
        total == 0 ? 0 : saved / total);
  }

  public ObjectNode toJson() {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("queries", exact.queries())
        .put("distinct_prompts", prompts)
        .put("zipf_exponent", exponent)
        .put("variant_rate", variantRate)
        .put("seed", seed)
        .put("exact_hit_rate", exact.hitRate())
        .put("normalised_hit_rate", normalised.hitRate())
        .put("flops_saved_fraction", flopsSavedFraction);
    return o;
  }
}
