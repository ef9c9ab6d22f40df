package dev.compactor.core.recipe;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Turns recipe YAML into a {@link Recipe}: checks the shape of every value against its schema, then
 * the rules that span stages (see {@link RecipeRules}), and reports every problem at once.
 */
final class RecipeParser {

  static final ParamSchema.ObjectType CALIBRATION_SCHEMA =
      ParamSchema.object("calibration")
          .required("dataset", ParamSchema.text())
          .required("samples", ParamSchema.integerAtLeast(1))
          .required("seq_len", ParamSchema.integerAtLeast(1))
          .optional("clean", cleanSchema());

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");

  private static final ParamSchema.ObjectType TOP =
      ParamSchema.object("a recipe")
          .required("name", ParamSchema.text())
          .required("stages", ParamSchema.any("a non-empty list of stages")) // see readStages
          .optional("calibration", CALIBRATION_SCHEMA);

  private RecipeParser() {}

  /** One {@code stages[i]} entry as far as it could be read. */
  record Entry(int index, String key, StageKind kind, StageParams params) {
    String path() {
      return "stages[" + index + "]." + key;
    }
  }

  static Recipe parse(String yaml) {
    List<RecipeProblem> problems = new ArrayList<>();
    JsonNode root = readYaml(yaml, problems);
    if (root == null) {
      throw new InvalidRecipeException(problems);
    }
    if (!root.isObject()) {
      problems.add(ParamSchema.mismatch("", "a mapping with name, stages, calibration", root));
      throw new InvalidRecipeException(problems);
    }
    checkTopLevel(root, problems);
    String name = Json.text(root, "name", null);
    if (name != null && root.get("name").isTextual() && !NAME.matcher(name).matches()) {
      problems.add(
          new RecipeProblem(
              "name",
              "expected letters, digits, '.', '_' or '-' (starting with a letter or digit, at"
                  + " most 128) but found \""
                  + name
                  + "\""));
    }

    Calibration calibration = null;
    JsonNode cal = root.get("calibration");
    if (cal != null && !cal.isNull()) {
      // its problems were already reported by the top-level check
      List<RecipeProblem> calProblems = new ArrayList<>();
      CALIBRATION_SCHEMA.check(cal, "calibration", calProblems);
      if (calProblems.isEmpty()) {
        try {
          calibration = calibration(cal);
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
          problems.add(new RecipeProblem("calibration.clean", e.getMessage()));
        }
      }
    }

    List<Entry> entries = readStages(root.get("stages"), problems);
    RecipeRules.check(entries, calibration != null, problems);
    if (!problems.isEmpty()) {
      throw new InvalidRecipeException(problems);
    }
    Optional<Calibration> c = Optional.ofNullable(calibration);
    List<StageSpec> stages = entries.stream().map(e -> new StageSpec(e.kind, e.params, c)).toList();
    return new Recipe(name, stages, c, yaml);
  }

  static Calibration calibration(JsonNode cal) {
    Map<String, String> clean = new java.util.LinkedHashMap<>();
    JsonNode c = cal.get("clean");
    if (c != null && c.isObject()) {
      c.fields()
          .forEachRemaining(
              f ->
                  clean.put(
                      f.getKey(),
                      f.getValue().isArray()
                          ? String.join(
                              ",",
                              java.util.stream.StreamSupport.stream(
                                      f.getValue().spliterator(), false)
                                  .map(JsonNode::asText)
                                  .toList())
                          : f.getValue().asText()));
    }
    return new Calibration(
        cal.get("dataset").asText(), cal.get("samples").asInt(), cal.get("seq_len").asInt(), clean);
  }

  /**
   * {@code calibration.clean}: the {@link dev.compactor.core.data.clean.CleanOptions} keys; their
   * values are checked when the calibration is built (a bad one is a problem at its key).
   */
  private static ParamSchema.ObjectType cleanSchema() {
    ParamSchema.ObjectType t = ParamSchema.object("calibration.clean");
    for (String k : dev.compactor.core.data.clean.CleanOptions.KEYS) {
      t = t.optional(k, ParamSchema.any("a cleaning option value"));
    }
    return t;
  }

  private static JsonNode readYaml(String yaml, List<RecipeProblem> problems) {
    if (yaml == null || yaml.isBlank()) {
      problems.add(new RecipeProblem("", "the recipe is empty"));
      return null;
    }
    try {
      JsonNode root =
          Json.YAML.reader().with(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).readTree(yaml);
      if (root == null || root.isMissingNode()) {
        problems.add(new RecipeProblem("", "the recipe is empty"));
        return null;
      }
      return root;
    } catch (JsonProcessingException e) {
      problems.add(
          new RecipeProblem("", "not valid YAML: " + e.getOriginalMessage() + location(e)));
      return null;
    }
  }

  private static String location(JsonProcessingException e) {
    return e.getLocation() == null
        ? ""
        : " (line "
            + e.getLocation().getLineNr()
            + ", column "
            + e.getLocation().getColumnNr()
            + ")";
  }

  private static void checkTopLevel(JsonNode root, List<RecipeProblem> problems) {
    TOP.check(root, "", problems);
  }

  private static List<Entry> readStages(JsonNode stages, List<RecipeProblem> problems) {
    List<Entry> entries = new ArrayList<>();
    if (stages == null || stages.isNull()) {
      return entries; // reported by the top-level check
    }
    if (!stages.isArray() || stages.isEmpty()) {
      problems.add(
          ParamSchema.mismatch(
              "stages", "a non-empty list like [{prune: {...}}, {evaluate: {...}}]", stages));
      return entries;
    }
    for (int i = 0; i < stages.size(); i++) {
      JsonNode item = stages.get(i);
      String at = "stages[" + i + "]";
      if (!item.isObject() || item.size() != 1) {
        problems.add(
            ParamSchema.mismatch(
                at, "a mapping with exactly one stage name, e.g. {prune: {sparsity: 0.5}}", item));
        continue;
      }
      Map.Entry<String, JsonNode> only = item.fields().next();
      String key = only.getKey();
      Optional<StageKind> kind = StageKind.fromRecipeKey(key);
      if (kind.isEmpty()) {
        problems.add(new RecipeProblem(at + "." + key, unknownStage(key)));
        continue;
      }
      List<RecipeProblem> stageProblems =
          StageSchemas.check(kind.get(), only.getValue(), at + "." + key);
      problems.addAll(stageProblems);
      StageParams params =
          stageProblems.isEmpty() ? StageSchemas.build(kind.get(), only.getValue()) : null;
      entries.add(new Entry(i, key, kind.get(), params));
    }
    return entries;
  }

  private static String unknownStage(String key) {
    if (key.startsWith("ingest")) {
      return "ingestion is implicit (it always runs first); remove it from stages";
    }
    List<String> known = new ArrayList<>();
    for (StageKind k : StageKind.values()) {
      known.add(k.recipeKey());
    }
    return "unknown stage; expected one of " + String.join(", ", known);
  }
}
