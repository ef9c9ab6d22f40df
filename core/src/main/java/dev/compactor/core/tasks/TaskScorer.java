package dev.compactor.core.tasks;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Scores task documents with lm-eval's log-likelihood rules ({@code TemplateLM._encode_pair} and
 * {@code HFLM._loglikelihood_tokens}):
 *
 * <ul>
 *   <li>trailing whitespace of the context moves to the front of the continuation;
 *   <li>the continuation's tokens are those of {@code encode(context + continuation)} past the
 *       tokens of {@code encode(context)}, so a token spanning the boundary belongs to the
 *       continuation;
 *   <li>the model reads {@code (context + continuation)[-(max + 1):][:-1]} (the context cut from
 *       the left when too long) and the continuation's log-likelihood is the sum of its tokens'
 *       log-probabilities; it is greedy when every one of them is the argmax;
 *   <li>multiple choice: {@code acc} takes the choice of highest log-likelihood, {@code acc_norm}
 *       the highest per character of the choice (without the delimiter); ties go to the first.
 * </ul>
 *
 * <p>The tokenizer's BOS, when it has one, starts every context (lm-eval's {@code
 * add_bos_token=True}), so an empty context is scored from BOS; without one an empty context is
 * refused.
 */
public final class TaskScorer {

  /** What one document scored: per choice (one entry for a continuation) the log-likelihood. */
  public record Scored(TaskDoc doc, double[] logLikelihood, boolean[] greedy, int[] tokens) {

    /** The index of the highest log-likelihood (first on ties). */
    public int predicted() {
      return argmax(logLikelihood, null);
    }

    /** The index of the highest log-likelihood per character of the choice. */
    public int predictedNorm() {
      if (!(doc instanceof TaskDoc.MultipleChoice mc)) {
        throw new IllegalStateException("acc_norm is for multiple-choice documents");
      }
      double[] len = new double[mc.choices().size()];
      for (int i = 0; i < len.length; i++) {
        len[i] = mc.choices().get(i).length();
      }
      return argmax(logLikelihood, len);
    }

    private static int argmax(double[] v, double[] by) {
      int best = 0;
      for (int i = 1; i < v.length; i++) {
        double a = by == null ? v[i] : v[i] / by[i];
        double b = by == null ? v[best] : v[best] / by[best];
        if (a > b) {
          best = i;
        }
      }
      return best;
    }
  }

  private final CausalLM model;
  private final TextTokenizer tokenizer;

  public TaskScorer(CausalLM model, TextTokenizer tokenizer) {
    this.model = model;
    this.tokenizer = tokenizer;
  }

  /** Scores every document and aggregates lm-eval's metrics. */
  public TaskResult evaluate(String task, List<TaskDoc> docs, ProgressListener progress) {
    return aggregate(task, score(docs, progress));
  }

  /** Per-document scores, in order. */
  public List<Scored> score(List<TaskDoc> docs, ProgressListener progress) {
    List<Scored> out = new ArrayList<>(docs.size());
    for (int d = 0; d < docs.size(); d++) {
      out.add(score(docs.get(d)));
      progress.onProgress("tasks", d + 1, docs.size());
    }
    return out;
  }

  /** One document's scores. */
  public Scored score(TaskDoc doc) {
    List<String> continuations = new ArrayList<>();
    if (doc instanceof TaskDoc.MultipleChoice mc) {
      for (String c : mc.choices()) {
        continuations.add(mc.delimiter() + c);
      }
    } else {
      continuations.add(((TaskDoc.Continuation) doc).continuation());
    }
    double[] ll = new double[continuations.size()];
    boolean[] greedy = new boolean[continuations.size()];
    int[] tokens = new int[continuations.size()];
    for (int i = 0; i < ll.length; i++) {
      int[][] pair = encodePair(doc.context(), continuations.get(i));
      double[] r = logLikelihood(pair[0], pair[1]);
      ll[i] = r[0];
      greedy[i] = r[1] == 1;
      tokens[i] = pair[1].length;
    }
    return new Scored(doc, ll, greedy, tokens);
  }

  /** lm-eval's {@code _encode_pair}: {context tokens, continuation tokens}. */
  int[][] encodePair(String context, String continuation) {
    String ctx = context.stripTrailing();
    String cont = context.substring(ctx.length()) + continuation;
    if (ctx.isEmpty() && tokenizer.bosId().isEmpty()) {
      throw new IllegalArgumentException(
          "an empty context needs a tokenizer with a BOS token to condition on");
    }
    int[] whole = encode(ctx + cont);
    int[] ctxEnc = encode(ctx);
    int n = whole.length - ctxEnc.length;
    if (n <= 0) {
      throw new IllegalArgumentException(
          "the continuation '" + continuation + "' adds no tokens to its context");
    }
    int[] contEnc = new int[n];
    System.arraycopy(whole, ctxEnc.length, contEnc, 0, n);
    return new int[][] {ctxEnc, contEnc};
  }

  private int[] encode(String text) {
    return tokenizer.bosId().isPresent() ? tokenizer.encodeWithBos(text) : tokenizer.encode(text);
  }

  /** {sum of the continuation's log-probabilities, 1 if greedy else 0}. */
  private double[] logLikelihood(int[] context, int[] continuation) {
    int max = model.maxSequenceLength();
    if (continuation.length > max) {
      throw new IllegalArgumentException(
          "a continuation of "
              + continuation.length
              + " tokens does not fit the model's context of "
              + max);
    }
    int total = context.length + continuation.length;
    int from = Math.max(0, total - (max + 1));
    int[] input = new int[total - 1 - from];
    for (int i = 0; i < input.length; i++) {
      int at = from + i;
      input[i] = at < context.length ? context[at] : continuation[at - context.length];
    }
    int first = input.length - continuation.length;
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray logits = model.logits(m, m.create(input, new Shape(1, input.length)));
      NDArray rows = logits.get(new NDIndex("0, {}:, :", first)).logSoftmax(1);
      float[] lp = rows.toFloatArray();
      int vocab = Math.toIntExact(rows.getShape().get(1));
      double sum = 0;
      boolean greedy = true;
      for (int t = 0; t < continuation.length; t++) {
        int target = continuation[t];
        sum += lp[t * vocab + target];
        for (int v = 0; v < vocab && greedy; v++) {
          if (lp[t * vocab + v] > lp[t * vocab + target]) {
            greedy = false;
          }
        }
      }
      return new double[] {sum, greedy ? 1 : 0};
    }
  }

  /** lm-eval's per-task aggregation of the per-document scores. */
  public static TaskResult aggregate(String task, List<Scored> scored) {
    int n = scored.size();
    if (n == 0) {
      throw new IllegalArgumentException("task " + task + " has no documents");
    }
    boolean mc = scored.get(0).doc() instanceof TaskDoc.MultipleChoice;
    double[] acc = new double[n];
    double[] accNorm = new double[n];
    double llSum = 0;
    for (int i = 0; i < n; i++) {
      Scored s = scored.get(i);
      if ((s.doc() instanceof TaskDoc.MultipleChoice) != mc) {
        throw new IllegalArgumentException(
            "task " + task + " mixes multiple-choice and continuation documents");
      }
      if (mc) {
        int gold = ((TaskDoc.MultipleChoice) s.doc()).gold();
        acc[i] = s.predicted() == gold ? 1 : 0;
        accNorm[i] = s.predictedNorm() == gold ? 1 : 0;
      } else {
        acc[i] = s.greedy()[0] ? 1 : 0;
        llSum += s.logLikelihood()[0];
      }
    }
    return new TaskResult(
        task,
        n,
        mean(acc),
        TaskResult.stderr(acc),
        mc ? mean(accNorm) : Double.NaN,
        mc ? TaskResult.stderr(accNorm) : Double.NaN,
        mc ? Double.NaN : Math.exp(-llSum / n));
  }

  private static double mean(double[] v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return s / v.length;
  }
}
