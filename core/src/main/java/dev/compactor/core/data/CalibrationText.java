package dev.compactor.core.data;

import dev.compactor.core.io.ModelDirectory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The calibration text of a data-aware step (GPTQ, AWQ, an importance matrix) together with where
 * it came from and its SHA-256, so the step's output can record exactly what it was calibrated on.
 *
 * @param corpus the text split into documents
 * @param source {@value Corpus#BUILTIN_EUROPARL}, {@code file:<absolute path>} or the URI a recipe
 *     named
 * @param sha256 hash of the file, or of the built-in training text
 */
public record CalibrationText(Corpus corpus, String source, String sha256) {

  /** The bundled English Europarl training split. */
  public static CalibrationText builtin() throws IOException {
    Corpus c = Corpus.europarlEnglish();
    return new CalibrationText(c, Corpus.BUILTIN_EUROPARL, sha256(c.trainText()));
  }

  /** A user's UTF-8 text file; {@code null} means {@link #builtin()}. */
  public static CalibrationText file(Path file) throws IOException {
    if (file == null) {
      return builtin();
    }
    return new CalibrationText(
        Corpus.fromTextFile(file), "file:" + file.toAbsolutePath(), ModelDirectory.sha256(file));
  }

  /**
   * The text a recipe's {@code calibration.dataset} names: {@value Corpus#BUILTIN_EUROPARL} (or
   * none) is {@link #builtin()}; anything else is a UTF-8 text file that {@code fetcher} makes
   * local, recorded under the URI the recipe gave.
   */
  public static CalibrationText forDataset(String dataset, Corpus.SourceFetcher fetcher)
      throws IOException {
    if (dataset == null || dataset.isBlank() || dataset.equals(Corpus.BUILTIN_EUROPARL)) {
      return builtin();
    }
    Path local = fetcher.fetch(dataset);
    return new CalibrationText(Corpus.fromTextFile(local), dataset, ModelDirectory.sha256(local));
  }

  static String sha256(String text) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime provides SHA-256", e);
    }
  }
}
