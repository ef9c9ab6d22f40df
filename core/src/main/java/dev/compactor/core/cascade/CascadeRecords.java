package dev.compactor.core.cascade;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.cascade.ConfidenceSignal.Signals;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tasks.TaskScorer;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs the small and the large model once over a request set and records each item's {@link
 * Outcome}.
 *
 * <ul>
 *   <li>{@link #tokens}: held-out text in disjoint windows, each token a next-token prediction
 *       scored by its NLL (teacher forcing: the context is the true text, whichever model predicted
 *       the earlier tokens);
 *   <li>{@link #windows}: the same windows as requests (a window's NLL is its tokens' mean, its
 *       confidence the mean of its tokens' signals);
 *   <li>{@link #tasks}: task documents scored by {@link TaskScorer}'s lm-eval rules (accuracy
 *       {@code acc}). The small model's confidence on a multiple-choice document is the softmax of
 *       its log-likelihoods of the choices; on a continuation document, the least confident of its
 *       greedy steps when it generates as many tokens as the gold continuation has, from the
 *       context alone (it does not see the gold tokens).
 * </ul>
 */
public final class CascadeRecords {

  private CascadeRecords() {}

  /**
   * Next-token outcomes on {@code tokens} cut into disjoint windows of {@code seqLen} inputs (each
   * predicting the token after it), at most {@code maxWindows}; group = window.
   */
  public static List<Outcome> tokens(
      CausalLM small,
      CausalLM large,
      ModelFlops smallFlops,
      ModelFlops largeFlops,
      int[] tokens,
      int seqLen,
      int maxWindows,
      ProgressListener progress) {
    checkVocab(small, large);
    int len = Math.min(seqLen, Math.min(small.maxSequenceLength(), large.maxSequenceLength()));
    int windows = Math.min(maxWindows, (tokens.length - 1) / len);
    if (windows < 1) {
      throw new IllegalArgumentException(
          "the text has " + tokens.length + " tokens, fewer than one window of " + (len + 1));
    }
    int vocab = small.vocabSize();
    List<Outcome> out = new ArrayList<>();
    for (int w = 0; w < windows; w++) {
      int begin = w * len;
      int[] input = new int[len];
      System.arraycopy(tokens, begin, input, 0, len);
      long t0 = System.nanoTime();
      float[] s = logits(small, input);
      long t1 = System.nanoTime();
      float[] l = logits(large, input);
      long t2 = System.nanoTime();
      double smallSec = (t1 - t0) / 1e9 / len;
      double largeSec = (t2 - t1) / 1e9 / len;
      for (int p = 0; p < len; p++) {
        int target = tokens[begin + p + 1];
        int off = p * vocab;
        out.add(
            new Outcome(
                w,
                Signals.ofLogits(s, off, vocab),
                nll(s, off, vocab, target),
                nll(l, off, vocab, target),
                smallFlops.token(p),
                largeFlops.token(p),
                smallSec,
                largeSec));
      }
      progress.onProgress("cascade windows", w + 1, windows);
    }
    return out;
  }

  /**
   * {@link #tokens}' windows as next-token requests: each window is a prompt, the request is its
   * next token (the window's last outcome: its NLL and signals), and it costs each model its
   * prefill of the window (FLOPs and measured time of the window's forward).
   */
  public static List<Outcome> nextTokenRequests(List<Outcome> tokens) {
    List<Outcome> out = new ArrayList<>();
    int i = 0;
    while (i < tokens.size()) {
      int g = tokens.get(i).group();
      double sf = 0;
      double lf = 0;
      double ss = 0;
      double ls = 0;
      Outcome last = null;
      for (; i < tokens.size() && tokens.get(i).group() == g; i++) {
        last = tokens.get(i);
        sf += last.smallFlops();
        lf += last.largeFlops();
        ss += last.smallSeconds();
        ls += last.largeSeconds();
      }
      out.add(
          new Outcome(g, last.small(), last.smallQuality(), last.largeQuality(), sf, lf, ss, ls));
    }
    return out;
  }

  /** {@link #tokens}' windows as requests: group means of quality and signals, sums of cost. */
  public static List<Outcome> windows(List<Outcome> tokens) {
    List<Outcome> out = new ArrayList<>();
    int i = 0;
    while (i < tokens.size()) {
      int g = tokens.get(i).group();
      double mp = 0;
      double mg = 0;
      double en = 0;
      double sq = 0;
      double lq = 0;
      double sf = 0;
      double lf = 0;
      double ss = 0;
      double ls = 0;
      int n = 0;
      for (; i < tokens.size() && tokens.get(i).group() == g; i++, n++) {
        Outcome o = tokens.get(i);
        mp += o.small().maxProb();
        mg += o.small().margin();
        en += o.small().entropy();
        sq += o.smallQuality();
        lq += o.largeQuality();
        sf += o.smallFlops();
        lf += o.largeFlops();
        ss += o.smallSeconds();
        ls += o.largeSeconds();
      }
      out.add(new Outcome(g, new Signals(mp / n, mg / n, en / n), sq / n, lq / n, sf, lf, ss, ls));
    }
    return out;
  }

  /** Task outcomes, one per document (quality: 1 when right under lm-eval's {@code acc}). */
  public static List<Outcome> tasks(
      CausalLM small,
      CausalLM large,
      ModelFlops smallFlops,
      ModelFlops largeFlops,
      TextTokenizer tokenizer,
      List<TaskDoc> docs,
      ProgressListener progress) {
    checkVocab(small, large);
    TaskScorer sc = new TaskScorer(small, tokenizer);
    TaskScorer lc = new TaskScorer(large, tokenizer);
    int max = Math.min(small.maxSequenceLength(), large.maxSequenceLength());
    List<Outcome> out = new ArrayList<>();
    for (int d = 0; d < docs.size(); d++) {
      TaskDoc doc = docs.get(d);
      long t0 = System.nanoTime();
      TaskScorer.Scored s = sc.score(doc);
      long t1 = System.nanoTime();
      TaskScorer.Scored l = lc.score(doc);
      long t2 = System.nanoTime();
      Signals signals;
      long smallF = 0;
      long largeF = 0;
      if (doc instanceof TaskDoc.MultipleChoice mc) {
        signals = Signals.ofScores(s.logLikelihood());
        for (String c : mc.choices()) {
          int n = Math.min(max, encode(tokenizer, mc.context() + mc.delimiter() + c).length - 1);
          smallF += smallFlops.span(0, n);
          largeF += largeFlops.span(0, n);
        }
      } else {
        TaskDoc.Continuation c = (TaskDoc.Continuation) doc;
        int[] context = encode(tokenizer, c.context().stripTrailing());
        int n = Math.min(max, encode(tokenizer, c.context() + c.continuation()).length - 1);
        signals = greedySignals(small, context, Math.max(1, n + 1 - context.length));
        smallF = smallFlops.span(0, n);
        largeF = largeFlops.span(0, n);
      }
      out.add(
          new Outcome(
              d,
              signals,
              correct(s),
              correct(l),
              smallF,
              largeF,
              (t1 - t0) / 1e9,
              (t2 - t1) / 1e9));
      progress.onProgress("cascade documents", d + 1, docs.size());
    }
    return out;
  }

  private static double correct(TaskScorer.Scored s) {
    if (s.doc() instanceof TaskDoc.MultipleChoice mc) {
      return s.predicted() == mc.gold() ? 1 : 0;
    }
    return s.greedy()[0] ? 1 : 0;
  }

  /** The least confident step of {@code steps} greedy tokens after {@code context}. */
  static Signals greedySignals(CausalLM model, int[] context, int steps) {
    int budget = Math.max(1, Math.min(steps, model.maxSequenceLength() - context.length + 1));
    int vocab = model.vocabSize();
    int[] prompt = context;
    if (context.length >= model.maxSequenceLength()) {
      prompt = new int[model.maxSequenceLength() - 1];
      System.arraycopy(context, context.length - prompt.length, prompt, 0, prompt.length);
      budget = 1;
    }
    Signals least = null;
    try (NDManager m = NDManager.newBaseManager();
        CausalLM.Decoder decoder = model.decoder(m, 1)) {
      int[] feed = prompt;
      for (int k = 0; k < budget; k++) {
        try (NDManager step = m.newSubManager()) {
          NDArray out = decoder.step(step.create(feed, new Shape(1, feed.length)));
          out.attach(step);
          float[] last = out.get(0, feed.length - 1).toFloatArray();
          Signals s = Signals.ofLogits(last, 0, vocab);
          least = least == null ? s : least.leastConfident(s);
          feed = new int[] {argmax(last, 0, vocab)};
        }
      }
    }
    return least;
  }

  static int argmax(float[] v, int off, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (v[off + i] > v[off + best]) {
        best = i;
      }
    }
    return best;
  }

  private static int[] encode(TextTokenizer t, String text) {
    return t.bosId().isPresent() ? t.encodeWithBos(text) : t.encode(text);
  }

  private static float[] logits(CausalLM model, int[] input) {
    try (NDManager m = NDManager.newBaseManager()) {
      return model.logits(m, m.create(input, new Shape(1, input.length))).toFloatArray();
    }
  }

  static double nll(float[] logits, int off, int vocab, int target) {
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[off + i]);
    }
    double z = 0;
    for (int i = 0; i < vocab; i++) {
      z += Math.exp(logits[off + i] - max);
    }
    return max + Math.log(z) - logits[off + target];
  }

  private static void checkVocab(CausalLM small, CausalLM large) {
    if (small.vocabSize() != large.vocabSize()) {
      throw new IllegalArgumentException(
          "a cascade needs one tokenizer: the small model's vocabulary has "
              + small.vocabSize()
              + " entries, the large model's "
              + large.vocabSize());
    }
  }
}
