package dev.compactor.cli;

import ai.djl.Device;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;

/**
 * How far a command's output moved from its input on held-out text: perplexity of both, KL and
 * top-1 agreement of the output's next-token distributions against the input's, in disjoint windows
 * of {@link TinyReferenceModel#EVAL_SEQ_LEN} tokens (fewer when the model's context is shorter).
 * What {@code factorize} and {@code share} report after writing their model.
 *
 * @param text the held-out text's name
 * @param tokens tokens scored
 * @param seqLen tokens per window
 * @param result the measured figures
 */
public record HeldOutQuality(String text, int tokens, int seqLen, DivergenceResult result) {

  /** Scores {@code output} against {@code input} on {@code held}; progress goes to {@code err}. */
  public static HeldOutQuality measure(Path input, Path output, TableText held, PrintStream err)
      throws Exception {
    int seqLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, ModelConfig.read(input).maxPositions());
    try (TextTokenizer tok = Tokenizers.forModel(input);
        Transformer base = Transformer.load(input, Device.cpu());
        Transformer out = Transformer.load(output, Device.cpu())) {
      int[] tokens = EvalText.of(tok, held.text()).tokens();
      err.printf(
          "evaluating on %s: %d tokens, windows of %d%n", held.name(), tokens.length, seqLen);
      DivergenceResult r =
          new DivergenceEvaluator(seqLen, seqLen)
              .evaluate(base, out, tokens, ProgressListener.NONE);
      return new HeldOutQuality(held.name(), tokens.length, seqLen, r);
    }
  }

  /** Adds the {@code quality} object of the command's JSON summary. */
  public void putJson(ObjectNode summary) {
    summary
        .putObject("quality")
        .put("text", text)
        .put("tokens", tokens)
        .put("seq_len", seqLen)
        .put("perplexity_before", result.baselinePerplexity())
        .put("perplexity_after", result.modelPerplexity())
        .put("kl_divergence", result.klDivergence())
        .put("top1_agreement", result.top1Agreement());
  }

  /** The one line the command prints. */
  public void print(PrintStream out) {
    out.printf(
        Locale.ROOT,
        "held-out %s (%d tokens): perplexity %.4f -> %.4f, KL %.6f, top-1 agreement %.2f%%%n",
        text,
        tokens,
        result.baselinePerplexity(),
        result.modelPerplexity(),
        result.klDivergence(),
        100 * result.top1Agreement());
  }
}
