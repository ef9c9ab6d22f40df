package dev.compactor.core.data.clean;

import ai.djl.Device;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Scores documents with a model directory's causal LM through {@link PerplexityEvaluator}: each
 * document on its own, BOS first, in disjoint windows of the model's context (one window for any
 * document that fits).
 */
public final class ModelPerplexityScorer implements PerplexityFilter.Scorer, AutoCloseable {

  private final CausalLM model;
  private final TextTokenizer tokenizer;

  private ModelPerplexityScorer(CausalLM model, TextTokenizer tokenizer) {
    this.model = model;
    this.tokenizer = tokenizer;
  }

  /** Loads the model in {@code dir} (fp32, CPU) and its tokenizer. */
  public static ModelPerplexityScorer open(Path dir) throws IOException {
    CausalLM model = Transformer.load(dir, Device.cpu());
    try {
      return new ModelPerplexityScorer(model, Tokenizers.forModel(dir));
    } catch (IOException | RuntimeException e) {
      model.close();
      throw e;
    }
  }

  @Override
  public double perplexity(String text) {
    EvalText t = EvalText.of(tokenizer, text);
    if (t.tokens().length < 2) {
      return Double.NaN;
    }
    int len = Math.min(t.tokens().length, model.maxSequenceLength());
    return new PerplexityEvaluator(len, len, 1)
        .evaluate(model, t.tokens(), t.scoredBytes(), ProgressListener.NONE)
        .perplexity();
  }

  @Override
  public void close() {
    try (model) {
      tokenizer.close();
    }
  }
}
