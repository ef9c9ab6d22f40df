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
 * @param share cross-layer weight sharing instead ({@code share: {form, ratio, group, side,
 *     choose}}, as {@code compactor share}): then no rank rule, method, linears or merge
 */
public record FactorizeParams(
    String method,
    int rank,
    double rankRatio,
    double ratio,
    double energy,
    List<String> linears,
    boolean merge,
    Share share)
    implements StageParams {

  static final List<String> RULES = List.of("rank", "rank_ratio", "ratio", "energy");

  /**
   * Cross-layer sharing ({@link dev.compactor.core.share.CrossLayerSharing}): {@code matrix} stores
   * one matrix per group of {@code group} layers for each linear, {@code basis} one low-rank basis
   * per group of adjacent layers with per-layer coefficients; {@code ratio} is the fraction of the
   * decoder linears' parameters kept.
   *
   * @param form {@code matrix} or {@code basis}
   * @param ratio fraction of the linear parameters kept, in (0, 1)
   * @param group layers per group; 0 for the default (2 for basis, every layer for matrix)
   * @param side which factor the basis form shares ({@code out}: u, {@code in}: v)
   * @param choose share only the groups whose held-out reconstruction beats per-layer SVD
   */
  public record Share(String form, double ratio, int group, String side, boolean choose) {
    public Share {
      dev.compactor.core.share.CrossLayerSharing.Form.parse(form);
      dev.compactor.core.share.BasisSharing.Side.parse(side);
      if (!(ratio > 0 && ratio < 1)) {
        throw new IllegalArgumentException("share.ratio must be in (0, 1), found " + ratio);
      }
      if (group < 0) {
        throw new IllegalArgumentException("share.group must be positive, found " + group);
      }
    }

    /** What {@code compactor share} would be asked for on a model of {@code layers} layers. */
    public dev.compactor.core.share.CrossLayerSharing.Spec spec(int layers) {
      var f = dev.compactor.core.share.CrossLayerSharing.Form.parse(form);
      int g =
          group > 0
              ? group
              : f == dev.compactor.core.share.CrossLayerSharing.Form.BASIS ? 2 : layers;
      return new dev.compactor.core.share.CrossLayerSharing.Spec(
          f, ratio, g, dev.compactor.core.share.BasisSharing.Side.parse(side), choose);
    }

    ObjectNode toJson() {
      ObjectNode o = Json.object().put("form", form).put("ratio", ratio);
      if (group > 0) {
        o.put("group", group);
      }
      return o.put("side", side).put("choose", choose);
    }
  }

  /** Factorization by a rank rule (no sharing). */
  public FactorizeParams(
      String method,
      int rank,
      double rankRatio,
      double ratio,
      double energy,
      List<String> linears,
      boolean merge) {
    this(method, rank, rankRatio, ratio, energy, linears, merge, null);
  }

  /** Cross-layer sharing. */
  public static FactorizeParams share(Share share) {
    return new FactorizeParams("svd", 0, 0, 0, 0, List.of(), false, share);
  }

  public FactorizeParams {
    if (share != null) {
      if (rank > 0 || rankRatio > 0 || ratio > 0 || energy > 0 || !linears.isEmpty() || merge) {
        throw new IllegalArgumentException(
            "share takes no rank rule, linears or merge (it chooses its own ranks)");
      }
      linears = List.of();
    } else {
      checkRankRule(method, rank, rankRatio, ratio, energy, linears);
      linears = List.copyOf(linears);
    }
  }

  private static void checkRankRule(
      String method,
      int rank,
      double rankRatio,
      double ratio,
      double energy,
      List<String> linears) {
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
          .optional("merge", ParamSchema.bool())
          .optional(
              "share",
              ParamSchema.object("share")
                  .required("ratio", ParamSchema.number(0, false, 1, false))
                  .optional("form", ParamSchema.oneOf("basis", "matrix"))
                  .optional("group", ParamSchema.integerAtLeast(1))
                  .optional("side", ParamSchema.oneOf("out", "in"))
                  .optional("choose", ParamSchema.bool()));

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    if (p != null && p.has("share")) {
      for (java.util.Iterator<String> it = p.fieldNames(); it.hasNext(); ) {
        String other = it.next();
        if (!other.equals("share")) {
          out.add(
              new RecipeProblem(
                  path.isEmpty() ? other : path + "." + other,
                  "share shares whole matrices or bases across layers and takes no " + other));
        }
      }
      JsonNode sh = p.get("share");
      if (Json.text(sh, "form", "basis").equals("basis") && Json.integer(sh, "group", 2) < 2) {
        out.add(
            new RecipeProblem(
                (path.isEmpty() ? "" : path + ".") + "share.group",
                "the basis form shares a basis between at least 2 layers; give group >= 2"));
      }
      return;
    }
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
    if (p != null && p.has("share")) {
      JsonNode sh = p.get("share");
      return share(
          new Share(
              Json.text(sh, "form", "basis"),
              sh.get("ratio").asDouble(),
              Json.integer(sh, "group", 0),
              Json.text(sh, "side", "out"),
              Json.bool(sh, "choose", false)));
    }
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
    if (share != null) {
      ObjectNode o = Json.object();
      o.set("share", share.toJson());
      return o;
    }
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
