package dev.compactor.core.recipe;

/**
 * One thing wrong with a recipe: where it is (a path such as {@code stages[1].quantize.bits}) and
 * what was expected versus found.
 */
public record RecipeProblem(String path, String message) {

  @Override
  public String toString() {
    return path.isEmpty() ? message : path + ": " + message;
  }
}
