package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.List;

/**
 * Compares a compressed model with its baseline position by position: KL divergence of the
 * baseline's next-token distribution from the model's, and how often their top-1 predictions agree.
 * Uses the same strided windows as {@link PerplexityEvaluator}, so every scored position sees the
 * same context in both models.
 */
public final class DivergenceEvaluator {

  private final int seqLen;
  private final int stride;
  private final int batchSize;

  public DivergenceEvaluator(int seqLen, int stride) {
    this(seqLen, stride, 0);
  }

  /** {@code batchSize} windows per model call; {@code 0} chooses by memory. */
  public DivergenceEvaluator(int seqLen, int stride, int batchSize) {
    if (batchSize < 0) {
      throw new IllegalArgumentException("expected batchSize >= 0, found " + batchSize);
    }
    this.seqLen = seqLen;
    this.stride = stride;
    this.batchSize = batchSize;
  }

  /** Tokenizes {@code text} (both models must share this tokenizer) and compares them on it. */
  public DivergenceResult evaluate(
      CausalLM baseline,
      CausalLM model,
      TextTokenizer tokenizer,
      String text,
      ProgressListener progress) {
    return evaluate(baseline, model, EvalText.of(tokenizer, text).tokens(), progress);
  }

  /** Compares the two models on every position of {@code tokens} but the last. */
  public DivergenceResult evaluate(
      CausalLM baseline, CausalLM model, int[] tokens, ProgressListener progress) {
    if (baseline.vocabSize() != model.vocabSize()) {
      throw new IllegalArgumentException(
          "expected the model to share the baseline's vocabulary of "
              + baseline.vocabSize()
              + " tokens, found "
              + model.vocabSize());
    }
    PerplexityEvaluator.checkSeqLen(baseline, seqLen);
    PerplexityEvaluator.checkSeqLen(model, seqLen);
    int vocab = model.vocabSize();
    List<StridedWindows.Window> windows = StridedWindows.plan(tokens.length, seqLen, stride);
    int batch = batchSize > 0 ? batchSize : StridedWindows.autoBatchSize(seqLen, vocab);
    List<List<StridedWindows.Window>> batches = StridedWindows.batches(windows, batch);
    double klSum = 0;
    double klMax = 0;
    double baseNll = 0;
    double modelNll = 0;
    long agree = 0;
    long count = 0;
    try (NDManager root = NDManager.newBaseManager()) {
      for (int i = 0; i < batches.size(); i++) {
        List<StridedWindows.Window> group = batches.get(i);
        try (NDManager m = root.newSubManager()) {
          NDArray input = StridedWindows.input(m, tokens, group);
          NDArray targets = StridedWindows.targets(m, tokens, group);
          NDArray p = baseline.logits(m, input);
          PerplexityEvaluator.checkLogits(p, group, vocab);
          NDArray q = model.logits(m, input);
          PerplexityEvaluator.checkLogits(q, group, vocab);
          NDArray lp = p.logSoftmax(2);
          NDArray lq = q.logSoftmax(2);
          float[] kl = lp.exp().mul(lp.sub(lq)).sum(new int[] {2}).toFloatArray();
          long[] topP = lp.argMax(2).toLongArray();
          long[] topQ = lq.argMax(2).toLongArray();
          float[] nllP = lp.gather(targets, 2).toFloatArray();
          float[] nllQ = lq.gather(targets, 2).toFloatArray();
          int len = group.get(0).length();
          for (int b = 0; b < group.size(); b++) {
            StridedWindows.Window w = group.get(b);
            for (int t = w.scoredFrom(); t < w.end(); t++) {
              int pos = b * len + (t - w.begin() - 1);
              // fp32 rounding can make a near-zero KL slightly negative; KL itself never is.
              double k = Math.max(0, kl[pos]);
              klSum += k;
              klMax = Math.max(klMax, k);
              baseNll -= nllP[pos];
              modelNll -= nllQ[pos];
              if (topP[pos] == topQ[pos]) {
                agree++;
              }
              count++;
            }
          }
        }
        progress.onProgress("divergence", i + 1, batches.size());
      }
    }
    return new DivergenceResult(
        count, klSum / count, klMax, (double) agree / count, baseNll / count, modelNll / count);
  }
}
