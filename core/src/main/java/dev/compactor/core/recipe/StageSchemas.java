package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;

/** Dispatches to each stage's parameter schema, cross-field checks and typed builder. */
final class StageSchemas {

  private StageSchemas() {}

  /**
   * Checks one stage's parameters (shape first, then rules that involve several parameters) and
   * returns the problems found; {@code params} may be null for "all defaults".
   */
  static List<RecipeProblem> check(StageKind kind, JsonNode params, String path) {
    List<RecipeProblem> out = new ArrayList<>();
    JsonNode p = params == null || params.isMissingNode() ? Json.MAPPER.nullNode() : params;
    schema(kind).check(p, path, out);
    if (out.isEmpty()) {
      JsonNode obj = p.isNull() ? Json.object() : p;
      switch (kind) {
        case QUANTIZE -> QuantizeParams.crossCheck(obj, path, out);
        case DISTILL -> DistillParams.crossCheck(obj, path, out);
        case FACTORIZE -> FactorizeParams.crossCheck(obj, path, out);
        case EVALUATE -> EvaluateParams.crossCheck(obj, path, out);
        case PRUNE -> PruneParams.crossCheck(obj, path, out);
        case PUBLISH -> {}
      }
    }
    return out;
  }

  /** Builds the typed view of parameters that passed {@link #check}. */
  static StageParams build(StageKind kind, JsonNode params) {
    JsonNode p = params == null || params.isNull() ? Json.object() : params;
    return switch (kind) {
      case PRUNE -> PruneParams.from(p);
      case QUANTIZE -> QuantizeParams.from(p);
      case DISTILL -> DistillParams.from(p);
      case FACTORIZE -> FactorizeParams.from(p);
      case EVALUATE -> EvaluateParams.from(p);
      case PUBLISH -> PublishParams.from(p);
    };
  }

  private static ParamSchema.ObjectType schema(StageKind kind) {
    return switch (kind) {
      case PRUNE -> PruneParams.SCHEMA;
      case QUANTIZE -> QuantizeParams.SCHEMA;
      case DISTILL -> DistillParams.SCHEMA;
      case FACTORIZE -> FactorizeParams.SCHEMA;
      case EVALUATE -> EvaluateParams.SCHEMA;
      case PUBLISH -> PublishParams.SCHEMA;
    };
  }
}
