package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Publishing: the model is released (model card + {@code ModelReady}) only when every gate holds on
 * the preceding evaluation.
 *
 * @param name published model name, or null for the recipe's name
 * @param gates quality gates; a null gate is not checked
 */
public record PublishParams(String name, Gates gates) implements StageParams {

  /**
   * Quality gates, each compared with the evaluation's metrics; null means "not gated".
   *
   * @param maxPerplexityIncrease largest allowed relative increase, e.g. 0.05 = +5 %
   * @param maxKlDivergence largest allowed mean KL(baseline ‖ candidate) per token, in nats
   * @param minTop1Agreement smallest allowed fraction of positions where both models' argmax agree
   * @param maxSizeRatio largest allowed candidate bytes / baseline bytes
   * @param maxTaskAccuracyDrop largest allowed fall of {@code acc} below the baseline's, in
   *     absolute fraction (0.02 = two points), on every task the evaluation scored
   * @param maxEnergyPerTokenRatio largest allowed candidate / baseline joules per generated token
   *     (the evaluation's first latency configuration); the model card says whether the figures
   *     were measured or estimated
   * @param minDecodeSpeedup smallest allowed candidate / baseline decode tokens per second (same
   *     configuration, measured as {@code latencyMeasuredWith} says)
   * @param minNativeDecodeSpeedup smallest allowed decode tokens per second of every GGUF file of
   *     the model over the original's as an F32 GGUF, both run natively ({@code native_speed})
   */
  public record Gates(
      Double maxPerplexityIncrease,
      Double maxKlDivergence,
      Double minTop1Agreement,
      Double maxSizeRatio,
      Double maxTaskAccuracyDrop,
      Double maxEnergyPerTokenRatio,
      Double minDecodeSpeedup,
      Double minNativeDecodeSpeedup) {

    /** Gates without the native speed gate. */
    public Gates(
        Double maxPerplexityIncrease,
        Double maxKlDivergence,
        Double minTop1Agreement,
        Double maxSizeRatio,
        Double maxTaskAccuracyDrop,
        Double maxEnergyPerTokenRatio,
        Double minDecodeSpeedup) {
      this(
          maxPerplexityIncrease,
          maxKlDivergence,
          minTop1Agreement,
          maxSizeRatio,
          maxTaskAccuracyDrop,
          maxEnergyPerTokenRatio,
          minDecodeSpeedup,
          null);
    }

    /** Gates without energy and speed gates. */
    public Gates(
        Double maxPerplexityIncrease,
        Double maxKlDivergence,
        Double minTop1Agreement,
        Double maxSizeRatio,
        Double maxTaskAccuracyDrop) {
      this(
          maxPerplexityIncrease,
          maxKlDivergence,
          minTop1Agreement,
          maxSizeRatio,
          maxTaskAccuracyDrop,
          null,
          null);
    }

    /** Gates without a task-accuracy gate. */
    public Gates(
        Double maxPerplexityIncrease,
        Double maxKlDivergence,
        Double minTop1Agreement,
        Double maxSizeRatio) {
      this(maxPerplexityIncrease, maxKlDivergence, minTop1Agreement, maxSizeRatio, null);
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("gates")
            .optional(
                "max_perplexity_increase",
                ParamSchema.number(0, true, Double.POSITIVE_INFINITY, false))
            .optional(
                "max_kl_divergence", ParamSchema.number(0, true, Double.POSITIVE_INFINITY, false))
            .optional("min_top1_agreement", ParamSchema.number(0, true, 1, true))
            .optional(
                "max_size_ratio", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
            .optional("max_task_accuracy_drop", ParamSchema.number(0, true, 1, true))
            .optional(
                "max_energy_per_token_ratio",
                ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
            .optional(
                "min_decode_speedup", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
            .optional(
                "min_native_decode_speedup",
                ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false));

    static Gates from(JsonNode g) {
      return new Gates(
          Json.optionalNumber(g, "max_perplexity_increase"),
          Json.optionalNumber(g, "max_kl_divergence"),
          Json.optionalNumber(g, "min_top1_agreement"),
          Json.optionalNumber(g, "max_size_ratio"),
          Json.optionalNumber(g, "max_task_accuracy_drop"),
          Json.optionalNumber(g, "max_energy_per_token_ratio"),
          Json.optionalNumber(g, "min_decode_speedup"),
          Json.optionalNumber(g, "min_native_decode_speedup"));
    }

    ObjectNode toJson() {
      ObjectNode o = Json.object();
      if (maxPerplexityIncrease != null) {
        o.put("max_perplexity_increase", maxPerplexityIncrease);
      }
      if (maxKlDivergence != null) {
        o.put("max_kl_divergence", maxKlDivergence);
      }
      if (minTop1Agreement != null) {
        o.put("min_top1_agreement", minTop1Agreement);
      }
      if (maxSizeRatio != null) {
        o.put("max_size_ratio", maxSizeRatio);
      }
      if (maxTaskAccuracyDrop != null) {
        o.put("max_task_accuracy_drop", maxTaskAccuracyDrop);
      }
      if (maxEnergyPerTokenRatio != null) {
        o.put("max_energy_per_token_ratio", maxEnergyPerTokenRatio);
      }
      if (minDecodeSpeedup != null) {
        o.put("min_decode_speedup", minDecodeSpeedup);
      }
      if (minNativeDecodeSpeedup != null) {
        o.put("min_native_decode_speedup", minNativeDecodeSpeedup);
      }
      return o;
    }
  }

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("publish")
          .optional("name", ParamSchema.text())
          .optional("gates", Gates.SCHEMA);

  static PublishParams from(JsonNode p) {
    return new PublishParams(
        Json.text(p, "name", null), Gates.from(p == null ? null : p.get("gates")));
  }

  @Override
  public StageKind kind() {
    return StageKind.PUBLISH;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object();
    if (name != null) {
      o.put("name", name);
    }
    o.set("gates", gates.toJson());
    return o;
  }
}
