package dev.compactor.core.tiny;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Path;

/** Checks every shipped reference model's training report must pass. */
public final class ReferenceReports {

  private ReferenceReports() {}

  /**
   * The report's validation figure beats the unigram baseline by more than a bit per byte, and
   * re-measuring the shipped weights in {@code dir} on the validation text gives it again.
   */
  public static void assertValidationReproduces(Path dir, TrainingReport report) throws Exception {
    assertTrue(
        report.validationBitsPerByte() < report.validationUnigramBitsPerByte() - 1.0,
        report.toString());
    String text = Corpus.europarlEnglish().validationText();
    try (Transformer model = Transformer.load(dir, Device.cpu())) {
      PerplexityResult r =
          new PerplexityEvaluator(TinyReferenceModel.EVAL_SEQ_LEN, TinyReferenceModel.EVAL_SEQ_LEN)
              .evaluate(model, new ByteTokenizer(), text, ProgressListener.NONE);
      assertEquals(report.validationBitsPerByte(), r.bitsPerByte(), 1e-4);
    }
  }
}
