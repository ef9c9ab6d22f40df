package dev.compactor.core.tiny;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cached tiny reference model: a valid Hugging Face directory whose recorded held-out quality
 * is reproduced by loading it back, and which clearly beats the byte-unigram floor.
 */
class TinyReferenceModelTest {

  private static Path dir;

  @BeforeAll
  static void build() throws Exception {
    dir = TinyReferenceModel.buildOrReuse(ProgressListener.NONE);
  }

  @Test
  void isAHuggingFaceDirectoryWithItsOwnTokenizer() throws Exception {
    for (String f :
        new String[] {
          "config.json",
          "model.safetensors",
          "tokenizer.json",
          "tokenizer_config.json",
          TinyReferenceModel.REPORT
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
  void unigramBaselineMatchesAHandCount() {
    ByteUnigramModel m = ByteUnigramModel.train("aab");
    // add-one smoothing: p(a) = 3/259, p(b) = 2/259
    double expected = -(Math.log(3.0 / 259) + Math.log(2.0 / 259)) / Math.log(2) / 2;
    assertEquals(expected, m.bitsPerByte("ab"), 1e-12);
  }

  @Test
  void reusesAMatchingBuildAndRebuildsOnlyOnRecipeChange(@TempDir Path tmp) throws Exception {
    FileTime before = Files.getLastModifiedTime(dir.resolve("model.safetensors"));
    assertEquals(dir, TinyReferenceModel.buildOrReuse(dir, ProgressListener.NONE));
    assertEquals(before, Files.getLastModifiedTime(dir.resolve("model.safetensors")));
    assertNull(TinyReferenceModel.recordedHash(tmp), "an empty directory holds no build");
    String hash = TinyReferenceModel.recordedHash(dir);
    TinyRecipe other =
        new TinyRecipe("x", 128, 512, 6, 4, 2, 256, 16, 601, 3e-3, 3e-4, 40, 0.1, 0.95, 1.0, 1234);
    assertNotEquals(hash, other.hash("same-text"));
    assertNotEquals(
        TinyReferenceModel.RECIPE.hash("text-a"), TinyReferenceModel.RECIPE.hash("text-b"));
  }
}
