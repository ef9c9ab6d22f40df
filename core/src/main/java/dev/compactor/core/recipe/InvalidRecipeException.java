package dev.compactor.core.recipe;

import java.util.List;
import java.util.stream.Collectors;

/**
 * Thrown when a recipe cannot be run; carries every problem found (not only the first), so the user
 * can fix the recipe in one go.
 */
public class InvalidRecipeException extends IllegalArgumentException {

  private final transient List<RecipeProblem> problems;

  public InvalidRecipeException(List<RecipeProblem> problems) {
    super(render(problems));
    this.problems = List.copyOf(problems);
  }

  /** Every problem, in recipe order. */
  public List<RecipeProblem> problems() {
    return problems;
  }

  private static String render(List<RecipeProblem> problems) {
    return "invalid recipe ("
        + problems.size()
        + (problems.size() == 1 ? " problem" : " problems")
        + "):\n"
        + problems.stream().map(p -> "  - " + p).collect(Collectors.joining("\n"));
  }
}
