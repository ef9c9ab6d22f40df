package dev.compactor.core.recipe;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A validated compression recipe: which stages run, in order, with which settings, plus the
 * calibration text data-aware stages read. Ingestion is implicit and not among {@link #stages()}.
 * The YAML it came from is kept verbatim so every output artifact can record its provenance.
 *
 * <pre>{@code
 * Recipe r = Recipe.parse(Files.readString(path));      // throws InvalidRecipeException
 * for (StageSpec s : r.stages()) send(s.kind().serviceName(), s.toJson());
 * }</pre>
 *
 * @param name recipe name (letters, digits, '.', '_', '-')
 * @param stages stages in run order
 * @param calibration calibration set, if any
 * @param rawYaml the recipe text exactly as submitted
 */
public record Recipe(
    String name, List<StageSpec> stages, Optional<Calibration> calibration, String rawYaml) {

  public Recipe {
    stages = List.copyOf(stages);
  }

  /**
   * Parses and validates recipe YAML.
   *
   * @throws InvalidRecipeException listing every problem, each with its path (e.g. {@code
   *     stages[1].quantize.bits})
   */
  public static Recipe parse(String yaml) {
    return RecipeParser.parse(yaml);
  }

  /** Reads and validates a recipe file. */
  public static Recipe parse(Path file) throws IOException {
    return parse(Files.readString(file, StandardCharsets.UTF_8));
  }

  /** Every problem with the recipe; empty when it is valid. */
  public static List<RecipeProblem> validate(String yaml) {
    try {
      parse(yaml);
      return List.of();
    } catch (InvalidRecipeException e) {
      return e.problems();
    }
  }

  /** The stage at {@code index} (0-based, ingestion not counted). */
  public StageSpec stage(int index) {
    return stages.get(index);
  }
}
