package dev.compactor.cli.quant;

import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The calibration text of a quantization run: a user's UTF-8 file, or the bundled English Europarl
 * training split when none is given. Records where it came from and its SHA-256 for provenance.
 *
 * @param corpus the text split into documents
 * @param source {@code file:<path>} or {@code builtin:europarl-en-train}
 * @param sha256 hash of the file, or of the built-in training text
 */
record CalibrationText(Corpus corpus, String source, String sha256) {

  /** Calibration windows taken per run. */
  static final int SAMPLES = 128;

  /** Seed of the window offsets, so a run is reproducible. */
  static final long SEED = 0;

  static final String BUILTIN = "builtin:europarl-en-train";

  static CalibrationText load(Path file) throws IOException {
    if (file == null) {
      Corpus c = Corpus.europarlEnglish();
      return new CalibrationText(c, BUILTIN, sha256(c.trainText()));
    }
    if (!Files.isRegularFile(file)) {
      throw new IOException("expected a UTF-8 calibration text file at " + file + ", found none");
    }
    return new CalibrationText(
        Corpus.fromTextFile(file), "file:" + file.toAbsolutePath(), ModelDirectory.sha256(file));
  }

  /** The windows: {@link #SAMPLES} of {@code seqLen} tokens from the training documents. */
  List<int[]> samples(TextTokenizer tokenizer, int seqLen) {
    return corpus.calibrationSamples(tokenizer, SAMPLES, seqLen, SEED);
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
