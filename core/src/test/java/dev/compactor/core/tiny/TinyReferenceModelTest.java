package dev.compactor.core.tiny;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.data.Corpus;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteTokenizer;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * The tiny reference model that ships in {@code models/tiny-llama-v1}: a valid Hugging Face
 * directory built by the current recipe, whose recorded held-out quality is reproduced by loading
 * it back and clearly beats the byte-unigram floor. The only test here that trains uses a miniature
 * recipe through the same code path, to show a build is deterministic and reused.
 */
class TinyReferenceModelTest {

  private static Path dir;

  @BeforeAll
  static void shipped() {
    dir = TinyReferenceModel.shipped();
  }

  @Test
  void isAHuggingFaceDirectoryWithItsOwnTokenizer() throws Exception {
    for (String f :
        new String[] {
          "config.json",
          "model.safetensors",
          "tokenizer.json",
          "tokenizer_config.json",
          TinyReferenceModel.REPORT,
          TinyReferenceModel.CHECKSUMS,
          "TRAINING.md"
        }) {
      assertTrue(Files.isRegularFile(dir.resolve(f)), f);
    }
    ModelConfig config = ModelConfig.read(dir);
    assertEquals("llama", config.modelType());
    assertEquals(TinyRecipe.VOCAB, config.vocabSize());
    assertTrue(config.numKvHeads() < config.numHeads(), "grouped-query attention");
    try (TextTokenizer tok = Tokenizers.forModel(dir)) {
      String text = Corpus.europarlEnglish().testDocuments().get(0);
      assertEquals(
          java.util.Arrays.toString(new ByteTokenizer().encode(text)),
          java.util.Arrays.toString(tok.encode(text)));
    }
  }

  @Test
  void shippedBuildIsTheCurrentRecipeAndItsTrainingReportSaysSo() throws Exception {
    String trainSha =
        TinyRecipe.sha256(Corpus.europarlEnglish().trainText().getBytes(StandardCharsets.UTF_8));
    assertEquals(
        TinyReferenceModel.RECIPE.hash(trainSha),
        TinyReferenceModel.recordedHash(dir),
        "TinyReferenceModel.RECIPE or the training text changed: retrain with"
            + " `./compactor tiny-model --train --out models/tiny-llama-v1` and update TRAINING.md");
    String training = Files.readString(dir.resolve("TRAINING.md"));
    String weights = TinyRecipe.sha256(Files.readAllBytes(dir.resolve("model.safetensors")));
    assertTrue(training.contains(weights), "TRAINING.md must quote the weights' sha256 " + weights);
  }

  @Test
  void reportedQualityIsReproducedAndBeatsUnigramClearly() throws Exception {
    TrainingReport report = TinyReferenceModel.report(dir);
    assertTrue(report.parameters() > 1_000_000 && report.parameters() < 5_000_000);
    assertTrue(
        report.validationBitsPerByte() < report.validationUnigramBitsPerByte() - 1.0,
        report.toString());
    assertTrue(report.validationUnigramBitsPerByte() > 4.0, report.toString());
    String text = Corpus.europarlEnglish().validationText();
    try (CausalLM model = Transformer.load(dir, ai.djl.Device.cpu())) {
      PerplexityResult r =
          new PerplexityEvaluator(TinyReferenceModel.EVAL_SEQ_LEN, TinyReferenceModel.EVAL_SEQ_LEN)
              .evaluate(model, new ByteTokenizer(), text, ProgressListener.NONE);
      assertEquals(report.validationBitsPerByte(), r.bitsPerByte(), 1e-4);
      assertEquals(report.validationPerplexity(), r.perplexity(), 1e-3);
    }
  }

  @Test
  void aCopyIsVerifiedAndACorruptedOneIsRefusedWithTheReason(@TempDir Path tmp) throws Exception {
    Path copy = TinyReferenceModel.copyShipped(tmp.resolve("copy"));
    assertEquals(
        Files.readString(dir.resolve(TinyReferenceModel.CHECKSUMS)),
        Files.readString(copy.resolve(TinyReferenceModel.CHECKSUMS)));
    assertThrows(
        IllegalArgumentException.class, () -> TinyReferenceModel.copyShipped(copy), "not empty");
    byte[] weights = Files.readAllBytes(copy.resolve("model.safetensors"));
    weights[weights.length - 1] ^= 1;
    Files.write(copy.resolve("model.safetensors"), weights);
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> TinyReferenceModel.verify(copy));
    assertTrue(e.getMessage().contains("model.safetensors: sha256"), e.getMessage());
    Files.writeString(copy.resolve("model.safetensors"), "version https://git-lfs.github.com/...");
    assertThrows(IllegalStateException.class, () -> TinyReferenceModel.verify(copy));
  }

  @Test
  void unigramBaselineMatchesAHandCount() {
    ByteUnigramModel m = ByteUnigramModel.train("aab");
    // add-one smoothing: p(a) = 3/259, p(b) = 2/259
    double expected = -(Math.log(3.0 / 259) + Math.log(2.0 / 259)) / Math.log(2) / 2;
    assertEquals(expected, m.bitsPerByte("ab"), 1e-12);
  }

  /** The one test that trains: a miniature recipe through the code path of the real build. */
  @Test
  void trainingIsDeterministicAndAMatchingBuildIsReused(@TempDir Path tmp) throws Exception {
    TinyRecipe mini =
        new TinyRecipe("mini", 32, 64, 1, 2, 1, 32, 4, 6, 3e-3, 3e-4, 2, 0.1, 0.95, 1.0, 1234);
    Path a = TinyReferenceModel.buildOrReuse(tmp.resolve("a"), mini, ProgressListener.NONE);
    Path b = TinyReferenceModel.buildOrReuse(tmp.resolve("b"), mini, ProgressListener.NONE);
    TinyReferenceModel.verify(a);
    assertEquals(
        TinyRecipe.sha256(Files.readAllBytes(a.resolve("model.safetensors"))),
        TinyRecipe.sha256(Files.readAllBytes(b.resolve("model.safetensors"))),
        "same recipe, same seed, same weights");
    FileTime before = Files.getLastModifiedTime(a.resolve("model.safetensors"));
    assertEquals(a, TinyReferenceModel.buildOrReuse(a, mini, ProgressListener.NONE));
    assertEquals(before, Files.getLastModifiedTime(a.resolve("model.safetensors")));
    assertNull(TinyReferenceModel.recordedHash(tmp), "an empty directory holds no build");
    TinyRecipe other =
        new TinyRecipe("x", 128, 512, 4, 4, 2, 256, 16, 501, 3e-3, 3e-4, 40, 0.1, 0.95, 1.0, 1234);
    assertNotEquals(TinyReferenceModel.RECIPE.hash("same-text"), other.hash("same-text"));
    assertNotEquals(
        TinyReferenceModel.RECIPE.hash("text-a"), TinyReferenceModel.RECIPE.hash("text-b"));
  }

  /**
   * Retrains the real recipe (5 minutes on two idle cores) and compares it with the shipped copy:
   * {@code mvn -B -ntp -pl core test -Dtest=TinyReferenceModelTest -Dcompactor.tiny.retrain=true}.
   */
  @Test
  @EnabledIfSystemProperty(named = "compactor.tiny.retrain", matches = "true")
  void retrainingReproducesTheShippedModel(@TempDir Path tmp) throws Exception {
    Path again = TinyReferenceModel.buildOrReuse(tmp.resolve("again"), ProgressListener.NONE);
    TrainingReport shipped = TinyReferenceModel.report(dir);
    TrainingReport retrained = TinyReferenceModel.report(again);
    assertEquals(shipped.recipeHash(), retrained.recipeHash());
    assertEquals(shipped.validationBitsPerByte(), retrained.validationBitsPerByte(), 0.01);
    LoggerFactory.getLogger(TinyReferenceModelTest.class)
        .info(
            "retrained weights {} identical to the shipped ones (validation bpb {} vs {})",
            TinyRecipe.sha256(Files.readAllBytes(again.resolve("model.safetensors")))
                    .equals(TinyRecipe.sha256(Files.readAllBytes(dir.resolve("model.safetensors"))))
                ? "are"
                : "are NOT",
            retrained.validationBitsPerByte(),
            shipped.validationBitsPerByte());
  }
}
