package dev.compactor.core.moe;

import ai.djl.Device;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Expert pruning (by frequency and by weighted norm) and expert merging of one MoE model at several
 * kept-expert counts, each scored against the original on the same text with {@link
 * DivergenceEvaluator} (the evaluator the quantization quality table uses): perplexity, KL and
 * top-1 agreement, next to total and active parameters and FLOPs per token. One set of calibration
 * statistics serves every row.
 */
public final class MoeTable {

  /**
   * One compressed model.
   *
   * @param name e.g. {@code prune frequency 4/8}
   * @param keptExperts experts per layer in the row's model
   * @param expertsPerToken its {@code num_experts_per_tok}
   * @param result its divergence from the original
   * @param deltaPplPercent perplexity change against the original, in percent
   * @param parameters all parameters (every expert)
   * @param activeParameters parameters one token passes through (its k experts only)
   * @param flopsPerToken {@code 2 ×} the active parameters that are multiplied (the embedding
   *     lookup is not; an untied head is), attention scores over the context left out
   */
  public record Row(
      String name,
      int keptExperts,
      int expertsPerToken,
      DivergenceResult result,
      double deltaPplPercent,
      long parameters,
      long activeParameters,
      long flopsPerToken) {}

  private final Path model;
  private final Path work;
  private final int[] evalTokens;
  private final List<int[]> calibration;
  private final int seqLen;
  private ExpertStatistics statistics;

  /**
   * @param model the original MoE model directory
   * @param work an empty scratch directory for the compressed models (one at a time)
   * @param evalTokens held-out tokens scored in windows of {@code seqLen}
   * @param calibration sequences the expert statistics are collected on
   */
  public MoeTable(Path model, Path work, int[] evalTokens, List<int[]> calibration, int seqLen) {
    this.model = model;
    this.work = work;
    this.evalTokens = evalTokens.clone();
    this.calibration = List.copyOf(calibration);
    this.seqLen = seqLen;
  }

  /** The original, then for each kept count: prune by frequency, by weighted norm, merge. */
  public List<Row> run(int[] keptCounts, ProgressListener progress) throws IOException {
    ModelConfig c = ModelConfig.read(model);
    if (!c.moe()) {
      throw new UnsupportedOperationException(
          "not supported: moe-table on " + c.modelType() + " (no mixture-of-experts layers)");
    }
    for (int n : keptCounts) {
      if (n < 1 || n > c.numExperts()) {
        throw new IllegalArgumentException(
            "kept experts must be between 1 and " + c.numExperts() + ", found " + n);
      }
    }
    int total = 1 + 3 * keptCounts.length;
    ExpertStatistics stats = ExpertStatistics.collect(model, calibration, Device.cpu());
    statistics = stats;
    List<Row> rows = new ArrayList<>();
    // every row is scored against the original on the same windows: its logits are computed once
    try (Transformer loaded = Transformer.load(model, Device.cpu());
        MemoizedLogits base = MemoizedLogits.of(loaded)) {
      DivergenceEvaluator eval = new DivergenceEvaluator(seqLen, seqLen);
      DivergenceResult self = eval.evaluate(base, base, evalTokens, ProgressListener.NONE);
      double basePpl = self.baselinePerplexity();
      rows.add(row("original " + c.numExperts() + "/" + c.numExperts(), c, self, basePpl));
      progress.onProgress("moe-table", rows.size(), total);
      for (int n : keptCounts) {
        for (ExpertScore method : ExpertScore.values()) {
          Path dir = work.resolve("prune-" + method.id() + "-" + n);
          ExpertPruner.prune(model, dir, stats, method, n);
          rows.add(score("prune " + method.id() + " " + fraction(n, c), dir, base, eval, basePpl));
          deleteRecursively(dir);
          progress.onProgress("moe-table", rows.size(), total);
        }
        Path dir = work.resolve("merge-" + n);
        ExpertMerger.merge(model, dir, stats, n);
        rows.add(score("merge weight-cosine " + fraction(n, c), dir, base, eval, basePpl));
        deleteRecursively(dir);
        progress.onProgress("moe-table", rows.size(), total);
      }
    }
    return rows;
  }

  /** The calibration statistics of the last {@link #run} (null before one). */
  public ExpertStatistics statistics() {
    return statistics;
  }

  private Row score(String name, Path dir, CausalLM base, DivergenceEvaluator eval, double basePpl)
      throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      return row(
          name, m.config(), eval.evaluate(base, m, evalTokens, ProgressListener.NONE), basePpl);
    }
  }

  private static Row row(String name, ModelConfig c, DivergenceResult r, double basePpl) {
    long active = activeParameters(c);
    long embedding = (long) c.vocabSize() * c.hiddenSize();
    long multiplied = c.tieWordEmbeddings() ? active : active - embedding;
    return new Row(
        name,
        c.numExperts(),
        c.expertsPerToken(),
        r,
        100 * (r.modelPerplexity() / basePpl - 1),
        c.parameterCount(),
        active,
        2 * multiplied);
  }

  /**
   * Parameters a token passes through: in every sparse layer, all experts but its k counted out
   * (dense layers and shared experts are passed through whole).
   */
  public static long activeParameters(ModelConfig c) {
    long perExpert = 3L * c.hiddenSize() * c.expertIntermediateSize();
    long sparse = 0;
    for (int i = 0; i < c.numLayers(); i++) {
      sparse += c.sparseLayer(i) ? 1 : 0;
    }
    return c.parameterCount() - sparse * (c.numExperts() - c.expertsPerToken()) * perExpert;
  }

  private static String fraction(int n, ModelConfig c) {
    return n + "/" + c.numExperts();
  }

  private static void deleteRecursively(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
