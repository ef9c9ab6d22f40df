package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.List;

/**
 * Measures perplexity and bits per byte of a causal LM on a text with Hugging Face's strided
 * sliding-window method: windows of {@code seqLen} tokens every {@code stride} tokens, only the
 * tokens new to a window are scored. {@code stride == seqLen} gives disjoint windows (fast, less
 * context); a smaller stride gives every token more context at more cost.
 */
public final class PerplexityEvaluator {

  private final int seqLen;
  private final int stride;
  private final int batchSize;

  /** Windows of {@code seqLen} tokens every {@code stride} tokens, batch size chosen by memory. */
  public PerplexityEvaluator(int seqLen, int stride) {
    this(seqLen, stride, 0);
  }

  /** As above with an explicit number of windows per model call ({@code 0} = automatic). */
  public PerplexityEvaluator(int seqLen, int stride, int batchSize) {
    if (batchSize < 0) {
      throw new IllegalArgumentException("expected batchSize >= 0, found " + batchSize);
    }
    this.seqLen = seqLen;
    this.stride = stride;
    this.batchSize = batchSize;
  }

  /** Tokenizes {@code text} with the model's tokenizer and scores it. */
  public PerplexityResult evaluate(
      CausalLM model, TextTokenizer tokenizer, String text, ProgressListener progress) {
    EvalText t = EvalText.of(tokenizer, text);
    return evaluate(model, t.tokens(), t.scoredBytes(), progress);
  }

  /**
   * Scores {@code tokens} (every token but the first); {@code scoredBytes} is the UTF-8 size of the
   * text those tokens stand for.
   */
  public PerplexityResult evaluate(
      CausalLM model, int[] tokens, long scoredBytes, ProgressListener progress) {
    checkSeqLen(model, seqLen);
    List<StridedWindows.Window> windows = StridedWindows.plan(tokens.length, seqLen, stride);
    int batch = batchSize > 0 ? batchSize : StridedWindows.autoBatchSize(seqLen, model.vocabSize());
    List<List<StridedWindows.Window>> batches = StridedWindows.batches(windows, batch);
    double totalNll = 0;
    long scored = 0;
    long start = System.nanoTime();
    try (NDManager root = NDManager.newBaseManager()) {
      for (int i = 0; i < batches.size(); i++) {
        List<StridedWindows.Window> group = batches.get(i);
        try (NDManager m = root.newSubManager()) {
          NDArray logits = model.logits(m, StridedWindows.input(m, tokens, group));
          checkLogits(logits, group, model.vocabSize());
          float[] logp =
              logits
                  .logSoftmax(2)
                  .gather(StridedWindows.targets(m, tokens, group), 2)
                  .toFloatArray();
          int len = group.get(0).length();
          for (int b = 0; b < group.size(); b++) {
            StridedWindows.Window w = group.get(b);
            for (int p = w.scoredFrom(); p < w.end(); p++) {
              totalNll -= logp[b * len + (p - w.begin() - 1)];
            }
            scored += w.scored();
          }
        }
        progress.onProgress("perplexity", i + 1, batches.size());
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double nll = totalNll / scored;
    double bpb = scoredBytes > 0 ? totalNll / Math.log(2) / scoredBytes : Double.NaN;
    return new PerplexityResult(
        scored, nll, Math.exp(nll), bpb, scoredBytes, seconds, scored / Math.max(seconds, 1e-9));
  }

  static void checkSeqLen(CausalLM model, int seqLen) {
    if (seqLen > model.maxSequenceLength()) {
      throw new IllegalArgumentException(
          "seqLen " + seqLen + " exceeds the model's context length " + model.maxSequenceLength());
    }
  }

  static void checkLogits(NDArray logits, List<StridedWindows.Window> group, int vocab) {
    long[] s = logits.getShape().getShape();
    if (s.length != 3 || s[0] != group.size() || s[1] != group.get(0).length() || s[2] != vocab) {
      throw new IllegalStateException(
          "expected logits of shape ("
              + group.size()
              + ", "
              + group.get(0).length()
              + ", "
              + vocab
              + ") from the model, found "
              + logits.getShape());
    }
  }
}
