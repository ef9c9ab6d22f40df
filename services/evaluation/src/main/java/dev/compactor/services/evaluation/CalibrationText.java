package dev.compactor.services.evaluation;

import dev.compactor.core.data.Corpus;
import dev.compactor.runtime.StageContext;
import java.io.IOException;

/**
 * The recipe's calibration text: {@code builtin:europarl} (or no dataset) is the English
 * European-Parliament corpus bundled with core; anything else is a UTF-8 text file fetched from its
 * {@code s3://} or {@code file://} URI.
 */
final class CalibrationText {
  static final String BUILTIN_EUROPARL = "builtin:europarl";

  private CalibrationText() {}

  static Corpus corpus(StageContext ctx, String dataset) throws IOException {
    if (dataset == null || dataset.isBlank() || dataset.equals(BUILTIN_EUROPARL)) {
      return Corpus.europarlEnglish();
    }
    return Corpus.fromTextFile(ctx.fetch(dataset));
  }
}
