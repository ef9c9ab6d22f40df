package dev.compactor.core.recipe;

import dev.compactor.core.data.Corpus;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The calibration text that data-aware stages (Wanda pruning, GPTQ/AWQ quantization, distillation)
 * read: where it is, how many samples to draw and how many tokens each sample holds.
 *
 * @param dataset URI of a UTF-8 text file ({@code s3://bucket/key}, {@code file:} URI or path)
 * @param samples number of sequences to draw
 * @param seqLen tokens per sequence
 */
public record Calibration(String dataset, int samples, int seqLen) {

  public Calibration {
    if (dataset == null || dataset.isBlank()) {
      throw new IllegalArgumentException("calibration dataset must be a non-empty URI");
    }
    if (samples <= 0 || seqLen <= 0) {
      throw new IllegalArgumentException(
          "calibration samples and seq_len must be > 0, found " + samples + " and " + seqLen);
    }
  }

  /**
   * The recipe's calibration, or else {@code samples} windows of {@code seqLen} tokens of the
   * request's calibration URI ({@code requestUri}), or of the built-in Europarl text when it has
   * none.
   */
  public static Calibration orDefault(
      Optional<Calibration> recipe, String requestUri, int samples, int seqLen) {
    String dataset =
        requestUri == null || requestUri.isBlank() ? Corpus.BUILTIN_EUROPARL : requestUri;
    return recipe.orElseGet(() -> new Calibration(dataset, samples, seqLen));
  }

  /**
   * {@link #samples()} windows of this text as {@code model}'s tokenizer encodes it, of {@link
   * #seqLen()} tokens or the model's context if shorter, at offsets drawn with {@code seed}.
   */
  public List<int[]> windows(Path model, Corpus.SourceFetcher fetcher, long seed)
      throws IOException {
    int len = Math.min(seqLen, ModelConfig.read(model).maxPositions());
    try (TextTokenizer tokenizer = Tokenizers.forModel(model)) {
      return Corpus.forDataset(dataset, fetcher).calibrationSamples(tokenizer, samples, len, seed);
    }
  }
}
