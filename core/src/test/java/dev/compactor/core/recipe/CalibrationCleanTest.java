package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationCleanTest {

  private static final String RECIPE =
      """
      name: cleaned
      stages:
        - prune: { method: wanda, sparsity: 0.5 }
      calibration:
        dataset: s3://data/calib.txt
        samples: 4
        seq_len: 32
        clean: { dedup: [exact, minhash], jaccard: 0.85, min_words: 5, lang: en, repetition: true }
      """;

  @Test
  void recipeCleanOptionsReachTheCalibrationAndTravelWithTheStage() {
    Recipe r = Recipe.parse(RECIPE);
    Calibration c = r.calibration().orElseThrow();
    assertEquals(
        Map.of(
            "dedup", "exact,minhash",
            "jaccard", "0.85",
            "min_words", "5",
            "lang", "en",
            "repetition", "true"),
        c.clean());
    StageSpec again = StageSpec.fromJson(StageKind.PRUNE, r.stage(0).toJson());
    assertEquals(c, again.calibration().orElseThrow());
  }

  @Test
  void badCleanValuesAreRecipeProblemsAtTheirKey() {
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () -> Recipe.parse(RECIPE.replace("jaccard: 0.85", "jaccard: 1.5")));
    assertTrue(e.getMessage().contains("calibration.clean"), e.getMessage());
    assertTrue(e.getMessage().contains("jaccard"), e.getMessage());
    InvalidRecipeException unknown =
        assertThrows(
            InvalidRecipeException.class,
            () -> Recipe.parse(RECIPE.replace("min_words: 5", "min_wordz: 5")));
    assertTrue(unknown.getMessage().contains("min_wordz"), unknown.getMessage());
  }

  @Test
  void windowsAreCutFromTheCleanedTrainingText(@TempDir Path dir) throws Exception {
    String para =
        "The Council has not yet taken a position on the proposal, and we should ask the"
            + " Commission to tell this House when it will present the figures.";
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 40; i++) {
      text.append(para).append("\n\n").append("Applause.").append("\n\n");
    }
    text.append("Mr President, I would like to thank the rapporteur for the work that has been")
        .append(" done on this report, which is an important step for the Union.\n");
    Path file = dir.resolve("cal.txt");
    Files.writeString(file, text);
    Calibration cal =
        new Calibration(file.toString(), 4, 32, Map.of("dedup", "exact", "min_words", "3"));
    Calibration.Windows w = cal.windowsAndCleaning(TinyReferenceModel.shipped(), Path::of, 1);
    assertEquals(4, w.windows().size());
    assertEquals(32, w.windows().get(0).length);
    Map<String, Double> m = w.metrics();
    // the corpus's 90 % training split of 81 documents: 2 distinct texts kept at most
    assertTrue(m.get("calibrationCleanKept") <= 2, m.toString());
    assertEquals(
        m.get("calibrationCleanInput") - m.get("calibrationCleanKept"),
        m.get("calibrationCleanDropped[dedup.exact]")
            + m.getOrDefault("calibrationCleanDropped[length.too_short]", 0.0),
        m.toString());
    assertTrue(m.get("calibrationCleanDropped[length.too_short]") > 0, m.toString());
    assertTrue(new Calibration.Windows(List.of(), Optional.empty()).metrics().isEmpty());
  }
}
