package dev.compactor.core.recipe;

import dev.compactor.core.data.Corpus;
import dev.compactor.core.data.clean.CleanOptions;
import dev.compactor.core.data.clean.CleanReport;
import dev.compactor.core.data.clean.DataCleaner;
import dev.compactor.core.data.clean.Document;
import dev.compactor.core.data.clean.ModelPerplexityScorer;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The calibration text that data-aware stages (Wanda pruning, GPTQ/AWQ quantization, distillation)
 * read: where it is, how many samples to draw and how many tokens each sample holds.
 *
 * @param dataset URI of a UTF-8 text file ({@code s3://bucket/key}, {@code file:} URI or path)
 * @param samples number of sequences to draw
 * @param seqLen tokens per sequence
 * @param clean the recipe's {@code calibration.clean} options ({@link CleanOptions} keys, values as
 *     text), applied to the training documents before windows are cut; empty for none. {@code
 *     ppl_model: input} scores with the stage's input model.
 */
public record Calibration(String dataset, int samples, int seqLen, Map<String, String> clean) {

  /** Calibration text without cleaning. */
  public Calibration(String dataset, int samples, int seqLen) {
    this(dataset, samples, seqLen, Map.of());
  }

  /** A corpus after the {@link #clean()} pass over its training documents, and its report. */
  public record Cleaned(Corpus corpus, Optional<CleanReport> report) {}

  /**
   * {@code corpus} with its training documents cleaned by {@link #clean()} (as it is when that is
   * empty); {@code model} is the stage's input model, what {@code ppl_model: input} scores with.
   */
  public Cleaned clean(Corpus corpus, Path model) throws IOException {
    if (clean.isEmpty()) {
      return new Cleaned(corpus, Optional.empty());
    }
    CleanOptions.Parsed p = CleanOptions.parse(clean, "calibration.clean.");
    List<Document> docs = new ArrayList<>();
    for (String d : corpus.trainDocuments()) {
      docs.add(Document.of(docs.size(), d));
    }
    DataCleaner.Result r;
    if (p.pplModel() == null) {
      r = DataCleaner.clean(docs, p.spec(), null);
    } else {
      Path scoring = p.pplModel().equals("input") ? model : Path.of(p.pplModel());
      try (ModelPerplexityScorer scorer = ModelPerplexityScorer.open(scoring)) {
        r = DataCleaner.clean(docs, p.spec(), scorer);
      }
    }
    return new Cleaned(
        corpus.withTrainDocuments(r.kept().stream().map(Document::text).toList()),
        Optional.of(r.report()));
  }

  /** Windows and, when cleaning ran, its report. */
  public record Windows(List<int[]> windows, Optional<CleanReport> cleaning) {

    /**
     * The cleaning counts as stage metrics: {@code calibrationCleanInput}, {@code ...Kept}, {@code
     * ...Clusters} and {@code calibrationCleanDropped[reason]} per reason code.
     */
    public Map<String, Double> metrics() {
      Map<String, Double> m = new LinkedHashMap<>();
      cleaning.ifPresent(
          r -> {
            m.put("calibrationCleanInput", (double) r.input());
            m.put("calibrationCleanKept", (double) r.kept());
            m.put("calibrationCleanClusters", (double) r.clusterCount());
            r.dropped().forEach((k, v) -> m.put("calibrationCleanDropped[" + k + "]", (double) v));
          });
      return m;
    }
  }

  public Calibration {
    clean = clean == null ? Map.of() : Map.copyOf(clean);
    if (!clean.isEmpty()) {
      CleanOptions.parse(clean, "calibration.clean.");
    }
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
    return windowsAndCleaning(model, fetcher, seed).windows();
  }

  /**
   * {@link #windows} with the report of the {@link #clean()} pass over the training documents (none
   * when it is empty).
   */
  public Windows windowsAndCleaning(Path model, Corpus.SourceFetcher fetcher, long seed)
      throws IOException {
    int len = Math.min(seqLen, ModelConfig.read(model).maxPositions());
    Cleaned cleaned = clean(Corpus.forDataset(dataset, fetcher), model);
    Corpus corpus = cleaned.corpus();
    Optional<CleanReport> report = cleaned.report();
    try (TextTokenizer tokenizer = Tokenizers.forModel(model)) {
      return new Windows(corpus.calibrationSamples(tokenizer, samples, len, seed), report);
    }
  }
}
