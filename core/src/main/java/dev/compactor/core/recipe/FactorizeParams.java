package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * Low-rank factorization: each linear layer W is replaced by two thinner ones from a truncated SVD.
 *
 * @param rank kept rank, > 0; 0 when {@code rankRatio} is used
 * @param rankRatio kept rank as a fraction of the full rank, in (0, 1); 0 when {@code rank} is used
 */
public record FactorizeParams(int rank, double rankRatio) implements StageParams {

  public FactorizeParams {
    if ((rank > 0) == (rankRatio > 0)) {
      throw new IllegalArgumentException("give exactly one of rank and rank_ratio");
    }
  }

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("factorize")
          .optional("method", ParamSchema.oneOf("svd"))
          .optional("rank", ParamSchema.integerAtLeast(1))
          .optional("rank_ratio", ParamSchema.number(0, false, 1, false));

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    boolean hasRank = p != null && p.has("rank");
    boolean hasRatio = p != null && p.has("rank_ratio");
    if (hasRank == hasRatio) {
      out.add(
          new RecipeProblem(
              path,
              hasRank
                  ? "give either rank or rank_ratio, not both"
                  : "missing; factorize needs rank (an integer) or rank_ratio (a fraction)"));
    }
  }

  static FactorizeParams from(JsonNode p) {
    return new FactorizeParams(Json.integer(p, "rank", 0), Json.number(p, "rank_ratio", 0));
  }

  @Override
  public StageKind kind() {
    return StageKind.FACTORIZE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object().put("method", "svd");
    return rank > 0 ? o.put("rank", rank) : o.put("rank_ratio", rankRatio);
  }
}
