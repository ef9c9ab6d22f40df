package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.tokenizer.ByteTokenizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Perplexity and divergence against a literal plain-Java port of Hugging Face's strided loop. */
class MetricsReferenceTest {

  private static final int VOCAB = 13;

  private static int[] tokens(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(VOCAB);
    }
    return t;
  }

  private static double[] logSoftmax(float[] logits) {
    double max = Double.NEGATIVE_INFINITY;
    for (float l : logits) {
      max = Math.max(max, l);
    }
    double sum = 0;
    for (float l : logits) {
      sum += Math.exp(l - max);
    }
    double lse = max + Math.log(sum);
    double[] out = new double[logits.length];
    for (int i = 0; i < logits.length; i++) {
      out[i] = logits[i] - lse;
    }
    return out;
  }

  /** Reference: {total nll, scored count, kl sum, agree count, model nll} over HF's windows. */
  private static double[] reference(
      ContextTableLM base, ContextTableLM model, int[] t, int seqLen, int stride) {
    double nll = 0;
    double modelNll = 0;
    double kl = 0;
    double agree = 0;
    long count = 0;
    int prevEnd = 0;
    // Hugging Face's loop with the stride capped at seqLen - 1 (see StridedWindows): otherwise
    // disjoint windows would leave every window's first token unscored.
    for (int begin = 0; begin < t.length; begin += Math.min(stride, seqLen - 1)) {
      int end = Math.min(begin + seqLen, t.length);
      int trgLen = end - prevEnd;
      int[] window = java.util.Arrays.copyOfRange(t, begin, end);
      float[][] lp = base.forward(window);
      float[][] lq = model.forward(window);
      for (int pos = end - trgLen; pos < end; pos++) {
        if (pos == begin) {
          continue; // the label shift drops the window's first token
        }
        double[] p = logSoftmax(lp[pos - begin - 1]);
        double[] q = logSoftmax(lq[pos - begin - 1]);
        nll -= p[t[pos]];
        modelNll -= q[t[pos]];
        int argP = 0;
        int argQ = 0;
        for (int v = 0; v < VOCAB; v++) {
          kl += Math.exp(p[v]) * (p[v] - q[v]);
          argP = p[v] > p[argP] ? v : argP;
          argQ = q[v] > q[argQ] ? v : argQ;
        }
        agree += argP == argQ ? 1 : 0;
        count++;
      }
      prevEnd = end;
      if (end == t.length) {
        break;
      }
    }
    return new double[] {nll, count, kl, agree, modelNll};
  }

  @ParameterizedTest
  @CsvSource({"50,16,16,0", "50,16,5,0", "50,16,1,0", "50,7,3,2", "10,16,4,0", "97,12,12,3"})
  void perplexityMatchesHuggingFaceStridedLoop(int n, int seqLen, int stride, int batch) {
    ContextTableLM model = new ContextTableLM(VOCAB, 64, 1);
    int[] t = tokens(n, n * 31L + stride);
    double[] ref = reference(model, model, t, seqLen, stride);
    PerplexityResult r =
        new PerplexityEvaluator(seqLen, stride, batch)
            .evaluate(model, t, 200, ProgressListener.NONE);
    assertEquals(n - 1, r.tokens(), "every token but the first is scored once");
    assertEquals((long) ref[1], r.tokens());
    assertEquals(ref[0] / ref[1], r.nll(), 1e-5);
    assertEquals(Math.exp(ref[0] / ref[1]), r.perplexity(), 1e-4 * r.perplexity());
    assertEquals(ref[0] / Math.log(2) / 200, r.bitsPerByte(), 1e-5);
  }

  @Test
  void smallerStrideGivesMoreContextAndADifferentAnswer() {
    ContextTableLM model = new ContextTableLM(VOCAB, 64, 1);
    int[] t = tokens(60, 5);
    double disjoint =
        new PerplexityEvaluator(8, 8).evaluate(model, t, 60, ProgressListener.NONE).nll();
    double strided =
        new PerplexityEvaluator(8, 2).evaluate(model, t, 60, ProgressListener.NONE).nll();
    assertTrue(Math.abs(disjoint - strided) > 1e-3, disjoint + " vs " + strided);
  }

  @ParameterizedTest
  @CsvSource({"50,16,16", "50,16,5", "41,9,4"})
  void divergenceMatchesReference(int n, int seqLen, int stride) {
    ContextTableLM base = new ContextTableLM(VOCAB, 64, 1);
    ContextTableLM other = new ContextTableLM(VOCAB, 64, 2);
    int[] t = tokens(n, 11);
    double[] ref = reference(base, other, t, seqLen, stride);
    long[] calls = {0};
    DivergenceResult r =
        new DivergenceEvaluator(seqLen, stride, 2)
            .evaluate(base, other, t, (phase, done, total) -> calls[0] = done);
    assertEquals((long) ref[1], r.tokens());
    assertEquals(ref[2] / ref[1], r.klDivergence(), 1e-4);
    assertEquals(ref[3] / ref[1], r.top1Agreement(), 1e-12);
    assertEquals(ref[0] / ref[1], r.baselineNll(), 1e-5);
    assertEquals(ref[4] / ref[1], r.modelNll(), 1e-5);
    assertTrue(r.klDivergence() > 0.1);
    assertTrue(calls[0] > 0, "progress was reported");
  }

  @Test
  void modelAgainstItselfHasZeroDivergence() {
    ContextTableLM base = new ContextTableLM(VOCAB, 64, 1);
    DivergenceResult r =
        new DivergenceEvaluator(16, 8).evaluate(base, base, tokens(40, 3), ProgressListener.NONE);
    assertEquals(0, r.klDivergence(), 1e-6);
    assertEquals(1.0, r.top1Agreement());
  }

  @Test
  void evalTextPrependsBosAndCountsBytes() {
    EvalText t = EvalText.of(new ByteTokenizer(), "héllo");
    assertEquals(7, t.tokens().length);
    assertEquals(ByteTokenizer.END_OF_TEXT, t.tokens()[0]);
    assertEquals(6, t.scoredBytes());
  }

  @Test
  void refusesBadWindowSettings() {
    ContextTableLM model = new ContextTableLM(VOCAB, 32, 1);
    int[] t = tokens(40, 1);
    assertThrows(
        IllegalArgumentException.class,
        () -> new PerplexityEvaluator(16, 17).evaluate(model, t, 40, ProgressListener.NONE));
    assertThrows(
        IllegalArgumentException.class,
        () -> new PerplexityEvaluator(64, 16).evaluate(model, t, 40, ProgressListener.NONE));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new PerplexityEvaluator(16, 16)
                .evaluate(model, new int[] {1}, 1, ProgressListener.NONE));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new DivergenceEvaluator(16, 16)
                .evaluate(model, new ContextTableLM(VOCAB + 1, 32, 1), t, ProgressListener.NONE));
  }

  @Test
  void latencyProbeRunsPrefillThenDecode() {
    ContextTableLM model = new ContextTableLM(VOCAB, 64, 1);
    LatencyResult r = new LatencyProbe(16, 8).measure(model, tokens(20, 1));
    assertEquals(16, r.promptTokens());
    assertEquals(8, r.decodeTokens());
    assertTrue(r.prefillMsPerToken() > 0 && r.decodeTokensPerSecond() > 0);
    assertThrows(
        IllegalArgumentException.class,
        () -> new LatencyProbe(60, 8).measure(model, tokens(60, 1)));
  }

  @Test
  void peakMemoryReadsProcStatus() {
    assertEquals(
        123 * 1024L,
        PeakMemory.kib("Name:\tjava\nVmHWM:\t     123 kB\nVmRSS:\t 100 kB\n", "VmHWM:"));
    assertEquals(-1, PeakMemory.kib("Name:\tjava\n", "VmHWM:"));
    PeakMemory m = PeakMemory.snapshot();
    assertTrue(m.heapUsedBytes() > 0 && m.heapMaxBytes() >= m.heapUsedBytes());
    if (java.nio.file.Files.isReadable(java.nio.file.Path.of("/proc/self/status"))) {
      assertTrue(m.peakRssBytes() >= m.rssBytes() && m.rssBytes() > 0);
    }
  }

  /**
   * A step window must not report an earlier allocation's peak: touch 128 MiB of native memory,
   * free it, then start a window; the process's lifetime VmHWM still holds the 128 MiB, the
   * window's peak must not. Checked against /proc/self/status read directly.
   */
  @Test
  void stepWindowForgetsEarlierPeaks() throws Exception {
    PeakMemory.StepWindow probe = PeakMemory.startStep();
    org.junit.jupiter.api.Assumptions.assumeTrue(
        probe.reset(), "VmHWM cannot be reset here: " + probe.measures());
    int size = 128 << 20;
    java.nio.ByteBuffer big = java.nio.ByteBuffer.allocateDirect(size);
    for (int i = 0; i < size; i += 4096) {
      big.put(i, (byte) 1);
    }
    java.lang.reflect.Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
    f.setAccessible(true);
    ((sun.misc.Unsafe) f.get(null)).invokeCleaner(big);
    String status = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/status"));
    long lifetimePeak = PeakMemory.kib(status, "VmHWM:");
    long rss = PeakMemory.kib(status, "VmRSS:");
    assertTrue(
        lifetimePeak - rss >= size / 2, "freed buffer should have left the lifetime peak up");

    PeakMemory.StepWindow step = PeakMemory.startStep();
    assertTrue(step.reset() && step.measures().contains("clear_refs"), step.measures());
    long stepPeak = step.peakRssBytes();
    assertTrue(
        stepPeak < lifetimePeak - size / 2,
        "step peak " + stepPeak + " still holds the earlier peak " + lifetimePeak);
    assertTrue(stepPeak >= rss - (16 << 20), "step peak " + stepPeak + " below rss " + rss);
  }
}
