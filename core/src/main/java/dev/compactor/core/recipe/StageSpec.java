package dev.compactor.core.recipe;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Optional;

/**
 * Everything one stage service needs from the recipe: its typed parameters and, when the recipe has
 * one, the calibration set. This is what travels as {@code StageRequested.paramsJson}: the
 * orchestrator writes it with {@link #toJson()} and the stage reads it back with {@link
 * #fromJson(StageKind, String)}, which re-validates it.
 */
public record StageSpec(StageKind kind, StageParams params, Optional<Calibration> calibration) {

  public StageSpec {
    if (params.kind() != kind) {
      throw new IllegalArgumentException(kind + " stage given " + params.kind() + " parameters");
    }
  }

  /** The parameters (defaults filled) plus a {@code calibration} object when there is one. */
  public String toJson() {
    ObjectNode o = params.toJson();
    calibration.ifPresent(
        c -> {
          ObjectNode cal =
              o.putObject("calibration")
                  .put("dataset", c.dataset())
                  .put("samples", c.samples())
                  .put("seq_len", c.seqLen());
          if (!c.clean().isEmpty()) {
            ObjectNode clean = cal.putObject("clean");
            c.clean().forEach(clean::put);
          }
        });
    return o.toString();
  }

  /**
   * Reads a {@code paramsJson} written by {@link #toJson()}.
   *
   * @throws InvalidRecipeException listing every problem when the JSON breaks the stage's schema
   */
  public static StageSpec fromJson(StageKind kind, String json) {
    JsonNode node;
    try {
      node = Json.MAPPER.readTree(json);
    } catch (JsonProcessingException e) {
      throw new InvalidRecipeException(
          List.of(new RecipeProblem(kind.recipeKey(), "params are not JSON: " + e.getMessage())));
    }
    if (node == null || !node.isObject()) {
      throw new InvalidRecipeException(
          List.of(ParamSchema.mismatch(kind.recipeKey(), "a JSON object", node)));
    }
    ObjectNode params = ((ObjectNode) node).deepCopy();
    JsonNode cal = params.remove("calibration");
    List<RecipeProblem> problems = new java.util.ArrayList<>();
    problems.addAll(StageSchemas.check(kind, params, kind.recipeKey()));
    if (cal != null) {
      RecipeParser.CALIBRATION_SCHEMA.check(cal, "calibration", problems);
    }
    if (!problems.isEmpty()) {
      throw new InvalidRecipeException(problems);
    }
    return new StageSpec(
        kind,
        StageSchemas.build(kind, params),
        Optional.ofNullable(cal).map(RecipeParser::calibration));
  }
}
