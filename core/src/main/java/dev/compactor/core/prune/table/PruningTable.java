package dev.compactor.core.prune.table;

import ai.djl.Device;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.LatencyProbe;
import dev.compactor.core.metrics.LatencyResult;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.NmPattern;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningRecovery;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.prune.depth.DepthMethod;
import dev.compactor.core.prune.depth.DepthPruning;
import dev.compactor.core.prune.depth.DepthScorer;
import dev.compactor.core.prune.depth.TokenPositions;
import dev.compactor.core.prune.structured.StructuredPruner;
import dev.compactor.core.prune.structured.StructuredSpec;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Measures pruning methods on one model and one text against the dense model: perplexity, KL
 * divergence and top-1 agreement of the next-token distributions, the parameters that are left
 * (non-zero decoder linear weights, and all stored parameters), the stored size and the measured
 * single-request speed. Every variant is written as an ordinary Hugging Face directory and scored
 * by the same evaluator as the dense model.
 *
 * <p>Unstructured and N:M rows keep every tensor at full size (zeros are stored), so their size and
 * their speed on the dense kernels this project runs are the dense model's: the table shows that
 * rather than assuming a speed-up no dense runtime delivers.
 */
public final class PruningTable {

  /** Prompt tokens of the latency probe. */
  public static final int LATENCY_PROMPT = 64;

  /** Greedy decode steps of the latency probe. */
  public static final int LATENCY_DECODE = 32;

  /** Latency probe repetitions by default; the median is reported. */
  public static final int LATENCY_REPEATS = 3;

  /**
   * One pruned (or the dense) model, measured.
   *
   * @param name row label
   * @param result divergence from the dense model (carries both perplexities)
   * @param linearParams decoder linear weights stored (zeros included)
   * @param nonzeroLinearParams decoder linear weights that are not zero
   * @param parameters all stored parameters
   * @param bytes size of the weight files
   * @param latency median single-request speed over the table's latency probes
   * @param denseLinearParams the dense model's decoder linear weights
   */
  public record Row(
      String name,
      DivergenceResult result,
      long linearParams,
      long nonzeroLinearParams,
      long parameters,
      long bytes,
      LatencyResult latency,
      long denseLinearParams) {

    public double perplexity() {
      return result.modelPerplexity();
    }

    /** Relative perplexity increase over the dense model, in percent. */
    public double deltaPplPercent() {
      return 100 * (result.modelPerplexity() / result.baselinePerplexity() - 1);
    }

    /** Fraction of the decoder linear weights that are zero. */
    public double sparsity() {
      return linearParams == 0 ? 0 : 1 - (double) nonzeroLinearParams / linearParams;
    }

    /**
     * Fraction of the dense model's decoder linear weights gone: zeroed (unstructured, N:M) or
     * removed with their heads, channels or layers (structured, depth).
     */
    public double removed() {
      return denseLinearParams == 0 ? 0 : 1 - (double) nonzeroLinearParams / denseLinearParams;
    }
  }

  /** Writes one pruned variant of {@code input} into {@code output}. */
  @FunctionalInterface
  public interface Pruner {
    void prune(Path input, Path output) throws IOException;
  }

  /** A row to measure: its label and how it is made. */
  public record Variant(String name, Pruner pruner) {}

  /**
   * The settings the table ran with.
   *
   * @param seqLen evaluation window
   * @param calibrationSamples Wanda/SparseGPT calibration windows
   */
  public record Setup(int seqLen, int calibrationSamples) {}

  private final Path model;
  private final Path work;
  private final int[] tokens;
  private final List<int[]> calibration;
  private final Setup setup;
  private final int latencyRepeats;

  /** A table whose speed figures are the median of {@link #LATENCY_REPEATS} probes. */
  public PruningTable(Path model, Path work, int[] tokens, List<int[]> calibration, int seqLen) {
    this(model, work, tokens, calibration, seqLen, LATENCY_REPEATS);
  }

  /**
   * @param model dense Hugging Face directory (the reference)
   * @param work empty scratch directory for the pruned copies
   * @param tokens evaluation tokens
   * @param calibration Wanda/SparseGPT calibration windows
   * @param seqLen evaluation window length
   * @param latencyRepeats latency probes per row (the median is reported), at least 1
   */
  public PruningTable(
      Path model,
      Path work,
      int[] tokens,
      List<int[]> calibration,
      int seqLen,
      int latencyRepeats) {
    if (latencyRepeats < 1) {
      throw new IllegalArgumentException(
          "expected at least 1 latency probe per row, found " + latencyRepeats);
    }
    if (tokens.length < LATENCY_PROMPT) {
      throw new IllegalArgumentException(
          "expected at least " + LATENCY_PROMPT + " evaluation tokens, found " + tokens.length);
    }
    this.model = model;
    this.work = work;
    this.tokens = tokens;
    this.calibration = calibration;
    this.setup = new Setup(seqLen, calibration.size());
    this.latencyRepeats = latencyRepeats;
  }

  /** Latency probes per row. */
  public int latencyRepeats() {
    return latencyRepeats;
  }

  public Setup setup() {
    return setup;
  }

  /**
   * The unstructured rows: magnitude, Wanda and SparseGPT each at 50 % (per output row), 4:8 and
   * 2:4 — the comparison of the Wanda and SparseGPT papers.
   */
  public List<Variant> unstructured() {
    List<Variant> out = new ArrayList<>();
    for (Method m : Method.values()) {
      String label =
          switch (m) {
            case MAGNITUDE -> "magnitude";
            case WANDA -> "Wanda";
            case SPARSEGPT -> "SparseGPT";
          };
      out.add(variant(label + " 50%", PruningSpec.of(m, 0.5)));
      out.add(variant(label + " 4:8", PruningSpec.of(m, new NmPattern(4, 8))));
      out.add(variant(label + " 2:4", PruningSpec.of(m, new NmPattern(2, 4))));
    }
    return out;
  }

  /**
   * One-shot versus iterative pruning, both recovered by distillation from the dense model for the
   * same number of steps in all: magnitude and Wanda at 50 %, once then {@code recovery}'s steps,
   * and in {@code rounds} rounds of the cubic schedule with {@code recovery.steps() / rounds} steps
   * after each.
   *
   * @param trainWindows distillation windows of {@code seq + 1} tokens
   */
  public List<Variant> recovered(DistillationSpec recovery, int rounds, List<int[]> trainWindows) {
    if (recovery.steps() % rounds != 0) {
      throw new IllegalArgumentException(
          "recovery steps " + recovery.steps() + " must divide into " + rounds + " rounds");
    }
    DistillationSpec perRound =
        new DistillationSpec(
            recovery.temperature(),
            recovery.alpha(),
            recovery.steps() / rounds,
            recovery.batchSize(),
            recovery.learningRate(),
            recovery.warmupSteps() / rounds,
            recovery.weightDecay(),
            recovery.maxGradNorm(),
            0,
            recovery.seed());
    List<Variant> out = new ArrayList<>();
    for (Method m : new Method[] {Method.MAGNITUDE, Method.WANDA}) {
      String label = m == Method.MAGNITUDE ? "magnitude" : "Wanda";
      PruningSpec spec = PruningSpec.of(m, 0.5);
      out.add(
          new Variant(
              label + " 50% +rec",
              (in, dir) ->
                  PruningRecovery.iterative(
                      spec,
                      1,
                      recovery,
                      in,
                      work.resolve(dir.getFileName() + "-rounds"),
                      dir,
                      () -> calibration,
                      trainWindows,
                      Device.cpu())));
      out.add(
          new Variant(
              label + " 50% iter" + rounds,
              (in, dir) ->
                  PruningRecovery.iterative(
                      spec,
                      rounds,
                      perRound,
                      in,
                      work.resolve(dir.getFileName() + "-rounds"),
                      dir,
                      () -> calibration,
                      trainWindows,
                      Device.cpu())));
    }
    return out;
  }

  /**
   * Structured rows (FLAP fluctuation importance, uniform widths): a quarter of the MLP channels;
   * the smallest whole number of KV groups (with their query heads) that is at least a quarter;
   * both with FLAP's bias compensation; and that last model recovered by {@code recovery}.
   *
   * @param trainWindows distillation windows of {@code seq + 1} tokens
   */
  public List<Variant> structured(DistillationSpec recovery, List<int[]> trainWindows)
      throws IOException {
    ModelConfig c = ModelConfig.read(model);
    int groups = (int) Math.ceil(c.numKvHeads() / 4.0);
    double heads = (double) groups / c.numKvHeads();
    String headLabel = groups + "/" + c.numKvHeads() + " KV groups";
    StructuredSpec channels =
        new StructuredSpec(0, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, false);
    StructuredSpec kv =
        new StructuredSpec(heads, 0, Importance.FLUCTUATION, HeadMode.KV_GROUPS, false);
    StructuredSpec both =
        new StructuredSpec(heads, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, true);
    List<Variant> out = new ArrayList<>();
    out.add(new Variant("channels 25%", (in, dir) -> structured(channels, in, dir)));
    out.add(new Variant(headLabel, (in, dir) -> structured(kv, in, dir)));
    out.add(new Variant("both, compensated", (in, dir) -> structured(both, in, dir)));
    out.add(
        new Variant(
            "both, comp. +rec",
            (in, dir) -> {
              Path pruned = work.resolve(dir.getFileName() + "-pruned");
              structured(both, in, pruned);
              PruningRecovery.recover(
                  in,
                  pruned,
                  dir,
                  trainWindows,
                  recovery,
                  work.resolve(dir.getFileName() + "-checkpoints"),
                  Device.cpu());
            }));
    return out;
  }

  /**
   * Depth rows: a quarter of the decoder layers (at least one) removed by block influence, once as
   * it is and once healed by {@code recovery}.
   *
   * @param trainWindows distillation windows of {@code seq + 1} tokens
   */
  public List<Variant> depth(DistillationSpec recovery, List<int[]> trainWindows)
      throws IOException {
    int layers = ModelConfig.read(model).numLayers();
    int drop = Math.max(1, layers / 4);
    String label = "-" + drop + "/" + layers + " layers";
    Pruner prune =
        (in, out) ->
            DepthPruning.run(
                in,
                out,
                DepthMethod.BLOCK_INFLUENCE,
                drop,
                calibration,
                TokenPositions.ALL,
                DepthScorer.Progress.NONE,
                Map.of());
    List<Variant> out = new ArrayList<>();
    out.add(new Variant(label, prune));
    out.add(
        new Variant(
            label + " +heal",
            (in, dir) -> {
              Path pruned = work.resolve(dir.getFileName() + "-pruned");
              prune.prune(in, pruned);
              PruningRecovery.recover(
                  in,
                  pruned,
                  dir,
                  trainWindows,
                  recovery,
                  work.resolve(dir.getFileName() + "-checkpoints"),
                  Device.cpu());
            }));
    return out;
  }

  private void structured(StructuredSpec spec, Path in, Path out) throws IOException {
    new StructuredPruner(spec)
        .prune(in, out, calibration, Map.of(), StructuredPruner.Progress.NONE);
  }

  private Variant variant(String name, PruningSpec spec) {
    return new Variant(
        name, (in, out) -> Pruning.run(spec, in, out, () -> calibration, Device.cpu()));
  }

  /** Measures the dense model, then every variant, reporting each finished row to progress. */
  public List<Row> run(List<Variant> variants, ProgressListener progress) throws IOException {
    int total = 1 + variants.size();
    List<Row> rows = new ArrayList<>();
    long denseLinear = WeightSparsity.of(model).elements();
    // every row is scored against the dense model on the same windows: its logits are computed once
    try (Transformer loaded = Transformer.load(model, Device.cpu());
        MemoizedLogits dense = MemoizedLogits.of(loaded)) {
      rows.add(measure("dense", dense, model, denseLinear));
      progress.onProgress("pruning table", 1, total);
      int i = 0;
      for (Variant v : variants) {
        Path dir = work.resolve("v" + i++ + "-" + v.name().replaceAll("[^A-Za-z0-9]+", "_"));
        v.pruner().prune(model, dir);
        rows.add(measure(v.name(), dense, dir, denseLinear));
        progress.onProgress("pruning table", rows.size(), total);
      }
    }
    return rows;
  }

  private Row measure(String name, CausalLM dense, Path dir, long denseLinear) throws IOException {
    ModelDirectory d = ModelDirectory.open(dir);
    WeightSparsity zeros = WeightSparsity.of(dir);
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      DivergenceResult r =
          new DivergenceEvaluator(setup.seqLen(), setup.seqLen())
              .evaluate(dense, m, tokens, ProgressListener.NONE);
      return new Row(
          name,
          r,
          zeros.elements(),
          zeros.elements() - zeros.zeros(),
          d.parameterCount(),
          d.totalWeightBytes(),
          latency(m),
          denseLinear);
    }
  }

  private LatencyResult latency(Transformer m) {
    int decode = Math.min(LATENCY_DECODE, m.maxSequenceLength() - LATENCY_PROMPT);
    LatencyProbe probe = new LatencyProbe(LATENCY_PROMPT, decode);
    LatencyResult[] runs = new LatencyResult[latencyRepeats];
    for (int i = 0; i < runs.length; i++) {
      runs[i] = probe.measure(m, tokens);
    }
    double[] prefill = Arrays.stream(runs).mapToDouble(LatencyResult::prefillMsPerToken).toArray();
    double[] speed =
        Arrays.stream(runs).mapToDouble(LatencyResult::decodeTokensPerSecond).toArray();
    return new LatencyResult(LATENCY_PROMPT, median(prefill), decode, median(speed));
  }

  static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
}
