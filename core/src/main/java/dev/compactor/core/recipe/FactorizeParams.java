package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.factorize.FactorizeSpec;
import dev.compactor.core.factorize.RankRule;
import java.util.ArrayList;
import java.util.List;

/**
 * Low-rank factorization: each selected decoder linear W is replaced by two thinner ones from a
 * truncated SVD ({@code method: svd}) or SVD-LLM's activation-aware SVD ({@code svd_llm}, the
 * default), as {@code compactor factorize} does ({@link dev.compactor.core.factorize}).
 *
 * <p>Exactly one rank rule: {@code ratio} (keep about that fraction of each linear's parameters),
 * {@code energy} (the smallest rank whose share of the squared singular values reaches it), or the
 * older {@code rank} (one fixed rank) / {@code rank_ratio} (a fraction of the full rank), which
 * validate but no factorization code implements yet ({@link #rankRule} refuses them).
 *
 * @param method {@code svd} or {@code svd_llm}
 * @param rank fixed rank, > 0; 0 when another rule is used
 * @param rankRatio fraction of the full rank, in (0, 1); 0 when another rule is used
 * @param ratio fraction of each linear's parameters kept, in (0, 1); 0 when another rule is used
 * @param energy share of the spectrum kept, in (0, 1]; 0 when another rule is used
 * @param linears which linears (relative names or their last part, e.g. {@code q_proj}); empty:
 *     every decoder linear
 * @param merge store the products back as dense weights (loadable by HF, vLLM, llama.cpp)
 */
public record FactorizeParams(
    String method,
    int rank,
    double rankRatio,
    double ratio,
    double energy,
    List<String> linears,
    boolean merge)
    implements StageParams {

  static final List<String> RULES = List.of("rank", "rank_ratio", "ratio", "energy");

  public FactorizeParams {
    FactorizeSpec.Method.parse(method);
    int rules =
        (rank > 0 ? 1 : 0) + (rankRatio > 0 ? 1 : 0) + (ratio > 0 ? 1 : 0) + (energy > 0 ? 1 : 0);
    if (rules != 1) {
      throw new IllegalArgumentException("give exactly one of rank, rank_ratio, ratio and energy");
    }
    if (ratio > 0) {
      RankRule.ratio(ratio);
    }
    if (energy > 0) {
      RankRule.energy(energy);
    }
    linears = List.copyOf(linears);
    for (String l : linears) {
      if (l.isBlank()) {
        throw new IllegalArgumentException("linears: empty name");
      }
    }
  }

  /** The older two-field form: plain SVD at a fixed rank or a fraction of the full rank. */
  public FactorizeParams(int rank, double rankRatio) {
    this("svd", rank, rankRatio, 0, 0, List.of(), false);
  }

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("factorize")
          .optional("method", ParamSchema.oneOf("svd", "svd_llm"))
          .optional("rank", ParamSchema.integerAtLeast(1))
          .optional("rank_ratio", ParamSchema.number(0, false, 1, false))
          .optional("ratio", ParamSchema.number(0, false, 1, false))
          .optional("energy", ParamSchema.number(0, false, 1, true))
          .optional("linears", ParamSchema.listOf(ParamSchema.text()))
          .optional("merge", ParamSchema.bool());

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    List<String> given = new ArrayList<>();
    for (String r : RULES) {
      if (p != null && p.has(r)) {
        given.add(r);
      }
    }
    if (given.size() != 1) {
      out.add(
          new RecipeProblem(
              path,
              given.isEmpty()
                  ? "missing; factorize needs one rank rule: ratio (fraction of parameters), energy"
                      + " (spectrum share), rank (an integer) or rank_ratio (a fraction)"
                  : "give one rank rule, not " + String.join(" and ", given)));
    }
  }

  static FactorizeParams from(JsonNode p) {
    List<String> linears = new ArrayList<>();
    if (p != null && p.has("linears")) {
      p.get("linears").forEach(n -> linears.add(n.asText()));
    }
    return new FactorizeParams(
        Json.text(p, "method", "svd_llm"),
        Json.integer(p, "rank", 0),
        Json.number(p, "rank_ratio", 0),
        Json.number(p, "ratio", 0),
        Json.number(p, "energy", 0),
        linears,
        Json.bool(p, "merge", false));
  }

  /**
   * The rule the factorization code applies.
   *
   * @throws UnsupportedOperationException for {@code rank} and {@code rank_ratio}
   */
  public RankRule rankRule() {
    if (ratio > 0) {
      return RankRule.ratio(ratio);
    }
    if (energy > 0) {
      return RankRule.energy(energy);
    }
    throw new UnsupportedOperationException(
        "not supported yet: factorize "
            + (rank > 0 ? "rank=" + rank : "rank_ratio=" + rankRatio)
            + " (use ratio or energy)");
  }

  /** What {@code compactor factorize} would be asked for. */
  public FactorizeSpec spec() {
    return new FactorizeSpec(FactorizeSpec.Method.parse(method), rankRule(), linears, merge);
  }

  @Override
  public StageKind kind() {
    return StageKind.FACTORIZE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object().put("method", method);
    if (rank > 0) {
      o.put("rank", rank);
    } else if (rankRatio > 0) {
      o.put("rank_ratio", rankRatio);
    } else if (ratio > 0) {
      o.put("ratio", ratio);
    } else {
      o.put("energy", energy);
    }
    if (!linears.isEmpty()) {
      ArrayNode a = o.putArray("linears");
      linears.forEach(a::add);
    }
    if (merge) {
      o.put("merge", true);
    }
    return o;
  }
}
