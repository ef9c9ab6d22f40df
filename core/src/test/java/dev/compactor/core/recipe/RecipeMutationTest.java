package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Damaged recipes (characters dropped, inserted or values swapped, from a fixed seed) must always
 * come back as a list of problems or a valid recipe, never as any other exception: the orchestrator
 * validates user input inside its stream thread.
 */
class RecipeMutationTest {

  private static final String ALPHABET = ":{}[]-, 0.5-1e9abcwandagptqtrue\n\"'#&*!|>";
  private static final String[] VALUES = {
    "0",
    "-1",
    "1.5",
    "1e400",
    "true",
    "null",
    "~",
    "[]",
    "{}",
    "\"\"",
    "abc",
    "[1, [2]]",
    "{a: 1}",
    "4",
    "8",
    "128",
    "-0.0",
    ".nan",
    ".inf",
    "&a x",
    "*a"
  };

  @Test
  void damagedRecipesYieldProblemsNotExceptions() throws IOException {
    List<String> recipes;
    try (Stream<Path> s = Files.list(Path.of("..", "recipes"))) {
      recipes =
          s.filter(p -> p.toString().endsWith(".yaml"))
              .sorted()
              .map(RecipeMutationTest::read)
              .toList();
    }
    assertTrue(!recipes.isEmpty());
    Random random = new Random(20261122);
    int invalid = 0;
    int runs = 0;
    for (String recipe : recipes) {
      for (int i = 0; i < 400; i++) {
        String damaged = mutate(recipe, random);
        runs++;
        try {
          if (!Recipe.validate(damaged).isEmpty()) {
            invalid++;
          }
        } catch (RuntimeException | StackOverflowError e) {
          fail("validate threw " + e + " for:\n" + damaged, e);
        }
      }
    }
    assertTrue(invalid > runs / 2, "most damaged recipes are invalid: " + invalid + "/" + runs);
  }

  private static String mutate(String text, Random random) {
    StringBuilder b = new StringBuilder(text);
    int edits = 1 + random.nextInt(3);
    for (int e = 0; e < edits && b.length() > 0; e++) {
      int at = random.nextInt(b.length());
      switch (random.nextInt(3)) {
        case 0 -> b.deleteCharAt(at);
        case 1 -> b.insert(at, ALPHABET.charAt(random.nextInt(ALPHABET.length())));
        default -> {
          // replace the value after a colon, where the schema checks bite
          int colon = b.indexOf(": ", at);
          if (colon >= 0) {
            int end = colon + 2;
            while (end < b.length() && ",}\n".indexOf(b.charAt(end)) < 0) {
              end++;
            }
            b.replace(colon + 2, end, VALUES[random.nextInt(VALUES.length)]);
          }
        }
      }
    }
    return b.toString();
  }

  private static String read(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
