package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tiny.ReferenceReports;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tiny.TrainingReport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

class TinyMixtralTest {

  @Test
  void configIsAByteLevelMixtral() {
    ModelConfig c = TinyMixtral.config();
    assertEquals(ModelConfig.Family.MIXTRAL, c.family());
    assertEquals(8, c.numExperts());
    assertEquals(2, c.expertsPerToken());
    assertEquals(257, c.vocabSize());
    assertEquals(0, c.slidingWindow());
    // F32 weights must stay under 10 MB to be committed
    assertTrue(c.parameterCount() * 4 < 10_000_000, "parameters " + c.parameterCount());
  }

  /** The committed model: intact, made by the current recipe, as good as its report says. */
  @Test
  void shippedModelMatchesItsRecipeAndReport() throws Exception {
    Path dir = Paths.get("..").resolve(TinyMixtral.SHIPPED_DIR);
    if (!Files.isDirectory(dir)) {
      dir = Paths.get(TinyMixtral.SHIPPED_DIR);
    }
    TinyReferenceModel.verify(dir);
    TrainingReport report = TinyReferenceModel.report(dir);
    assertEquals(
        TinyReferenceModel.recipeHash(TinyMixtral.RECIPE, TinyMixtral.config()),
        report.recipeHash(),
        "TinyMixtral.RECIPE, its config or the training text changed: retrain (see TRAINING.md)");
    assertEquals(TinyMixtral.config().parameterCount(), report.parameters());
    ReferenceReports.assertValidationReproduces(dir, report);
  }

  /**
   * Trains {@code tiny-mixtral-v1} into the given directory: {@code mvn -B -ntp -pl core test
   * -Dtest=TinyMixtralTest -Dcompactor.tiny.moe.out=/tmp/tiny-mixtral-v1}.
   */
  @Test
  @EnabledIfSystemProperty(named = "compactor.tiny.moe.out", matches = ".+")
  void trainsTheReferenceModel() throws Exception {
    Path out = Paths.get(System.getProperty("compactor.tiny.moe.out"));
    TinyMixtral.train(out, ProgressListener.NONE);
    assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
  }
}
