package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Prefill and greedy KV-cache decode ({@link CausalLM#decoder}) at every pair of batch size and
 * context length, repeated and reported as medians, with the peak memory of each configuration and,
 * given an {@link EnergyMeter}, joules per prompt token and per generated token from the same runs
 * (the energy of all repeats over all their tokens: a counter's resolution then matters less). A
 * short warm-up first keeps one-off costs (native library start, allocator growth) out.
 *
 * <p>The sequences of a batch are different windows of the source text, so a batch is not one
 * sequence copied. No figure is asserted anywhere: this measures, it does not judge.
 */
public final class SpeedSweep {

  /**
   * What to run.
   *
   * @param batchSizes sequences per batch, each at least 1
   * @param contextLengths prompt lengths, each at least 1
   * @param decodeTokens tokens generated per sequence, at least 1
   * @param repeats runs per configuration, the median reported
   */
  public record Config(
      List<Integer> batchSizes, List<Integer> contextLengths, int decodeTokens, int repeats) {

    /** What {@code latency: true} measures: batch 1, a 32-token prompt, 32 decoded, 3 runs. */
    public static final Config DEFAULT = new Config(List.of(1), List.of(32), 32, 3);

    public Config {
      batchSizes = List.copyOf(batchSizes);
      contextLengths = List.copyOf(contextLengths);
      if (batchSizes.isEmpty() || contextLengths.isEmpty()) {
        throw new IllegalArgumentException("expected at least one batch size and context length");
      }
      for (int v : batchSizes) {
        if (v < 1) {
          throw new IllegalArgumentException("batch sizes must be >= 1, found " + batchSizes);
        }
      }
      for (int v : contextLengths) {
        if (v < 1) {
          throw new IllegalArgumentException(
              "context lengths must be >= 1, found " + contextLengths);
        }
      }
      if (decodeTokens < 1 || repeats < 1) {
        throw new IllegalArgumentException(
            "expected decodeTokens >= 1 and repeats >= 1, found " + decodeTokens + ", " + repeats);
      }
    }
  }

  /**
   * @param points one per (batch, context) pair, batch-major in the config's order
   * @param peakRssBeforeResets the highest process peak seen just before a configuration reset the
   *     high-water mark, so a caller whose own window the sweep reset can still report its true
   *     peak; -1 when unknown
   */
  public record Result(List<SpeedPoint> points, long peakRssBeforeResets) {
    public Result {
      points = List.copyOf(points);
    }
  }

  private final Config config;
  private final EnergyMeter meter;

  /**
   * @param meter energy meter, or null to measure speed only
   */
  public SpeedSweep(Config config, EnergyMeter meter) {
    this.config = config;
    this.meter = meter;
  }

  /** Runs every configuration on {@code model}, prompts cut from {@code source}. */
  public Result measure(CausalLM model, int[] source) {
    int longest = config.contextLengths().stream().mapToInt(Integer::intValue).max().orElseThrow();
    if (source.length < longest) {
      throw new IllegalArgumentException(
          "expected at least "
              + longest
              + " source tokens for the prompts, found "
              + source.length);
    }
    if (longest + config.decodeTokens() > model.maxSequenceLength()) {
      throw new IllegalArgumentException(
          "context "
              + longest
              + " + decode "
              + config.decodeTokens()
              + " tokens exceed the model's context length "
              + model.maxSequenceLength());
    }
    run(model, prompts(source, 1, Math.min(8, longest)), 2, null);
    List<SpeedPoint> points = new ArrayList<>();
    long peakBefore = -1;
    for (int batch : config.batchSizes()) {
      for (int ctx : config.contextLengths()) {
        peakBefore = Math.max(peakBefore, PeakMemory.snapshot().peakRssBytes());
        PeakMemory.StepWindow window = PeakMemory.startStep();
        int[][] prompts = prompts(source, batch, ctx);
        int n = config.repeats();
        double[] prefill = new double[n];
        double[] decode = new double[n];
        double prefillJ = 0;
        double decodeJ = 0;
        for (int r = 0; r < n; r++) {
          double[] run = run(model, prompts, config.decodeTokens(), meter);
          prefill[r] = (double) batch * ctx / (run[0] / 1e9);
          decode[r] = (double) batch * config.decodeTokens() / (run[1] / 1e9);
          prefillJ += run[2];
          decodeJ += run[3];
        }
        points.add(
            new SpeedPoint(
                batch,
                ctx,
                config.decodeTokens(),
                median(prefill),
                median(decode),
                window.peakRssBytes(),
                prefillJ / ((double) n * batch * ctx),
                decodeJ / ((double) n * batch * config.decodeTokens())));
      }
    }
    return new Result(points, peakBefore);
  }

  /** {@code batch} windows of {@code len} tokens from different places of {@code source}. */
  static int[][] prompts(int[] source, int batch, int len) {
    int[][] out = new int[batch][];
    int places = source.length - len + 1;
    for (int b = 0; b < batch; b++) {
      int at = (int) ((long) b * len % places);
      out[b] = Arrays.copyOfRange(source, at, at + len);
    }
    return out;
  }

  /**
   * Returns {prefill nanos, decode nanos, prefill joules, decode joules} (joules NaN w/o meter).
   */
  private static double[] run(CausalLM model, int[][] prompts, int steps, EnergyMeter meter) {
    int batch = prompts.length;
    int len = prompts[0].length;
    int[] flat = new int[batch * len];
    for (int b = 0; b < batch; b++) {
      System.arraycopy(prompts[b], 0, flat, b * len, len);
    }
    try (NDManager m = NDManager.newBaseManager();
        CausalLM.Decoder decoder = model.decoder(m, batch)) {
      NDArray prompt = m.create(flat, new Shape(batch, len));
      EnergyMeter.Interval pe = meter == null ? null : meter.start();
      long t0 = System.nanoTime();
      int[] next = argMaxLast(decoder.step(prompt));
      long t1 = System.nanoTime();
      double prefillJ = pe == null ? Double.NaN : pe.joules();
      EnergyMeter.Interval de = meter == null ? null : meter.start();
      long t2 = System.nanoTime();
      for (int i = 0; i < steps; i++) {
        try (NDManager step = m.newSubManager()) {
          NDArray out = decoder.step(step.create(next, new Shape(batch, 1)));
          out.attach(step);
          next = argMaxLast(out);
        }
      }
      long t3 = System.nanoTime();
      double decodeJ = de == null ? Double.NaN : de.joules();
      return new double[] {t1 - t0, t3 - t2, prefillJ, decodeJ};
    }
  }

  /** The argmax token of each sequence's last position; reading it waits for the computation. */
  private static int[] argMaxLast(NDArray logits) {
    long n = logits.getShape().get(1);
    long[] ids = logits.get(new NDIndex(":, {}, :", n - 1)).argMax(1).toLongArray();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = (int) ids[i];
    }
    return out;
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
}
