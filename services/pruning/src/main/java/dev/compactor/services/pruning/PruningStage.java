package dev.compactor.services.pruning;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.moe.ExpertMerger;
import dev.compactor.core.moe.ExpertPruner;
import dev.compactor.core.moe.ExpertScore;
import dev.compactor.core.moe.ExpertStatistics;
import dev.compactor.core.moe.MoeFlops;
import dev.compactor.core.moe.Moefier;
import dev.compactor.core.moe.RouterTrainer;
import dev.compactor.core.prune.InputNormCollector;
import dev.compactor.core.prune.MagnitudePruner;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningOutput;
import dev.compactor.core.prune.PruningRecovery;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.SparseGptPruner;
import dev.compactor.core.prune.WandaPruner;
import dev.compactor.core.prune.depth.DepthPruning;
import dev.compactor.core.prune.depth.TokenPositions;
import dev.compactor.core.prune.structured.StructuredPruner;
import dev.compactor.core.prune.structured.StructuredReport;
import dev.compactor.core.prune.structured.StructuredSpec;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.PruneParams;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.recipe.StepMemory;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import dev.compactor.runtime.Devices;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Prunes the job's model to the recipe's sparsity: {@code magnitude} zeroes the smallest weights of
 * each output row; {@code wanda} scores them by |W| times the input activation norm measured on the
 * recipe's calibration text (default: the built-in Europarl corpus); {@code sparsegpt} prunes layer
 * by layer from the calibration Hessian and updates the kept weights. {@code pattern: "2:4"} makes
 * any of them semi-structured. {@code experts: {keep: n, method: frequency|weighted_norm|merge}}
 * instead removes whole experts of a Mixtral model: it keeps the n experts of every layer most
 * often routed to (or with the highest routing-weighted output norm) on the calibration text, or
 * merges the experts into n groups. {@code structured: {heads, channels, importance, head_mode,
 * compensate}} removes whole attention heads and MLP channels of a dense Llama-family model ({@link
 * StructuredPruner}). {@code depth: {drop: n, method: block_influence|angular}} removes n whole
 * decoder layers, scored on the calibration text. {@code moefy: {experts: E, k: K}} splits every
 * dense MLP into E routed experts of which K run per token (MoEfication). Writes the pruned model
 * as a Hugging Face directory.
 */
public final class PruningStage implements Stage {

  /** Calibration windows when the recipe has no calibration section. */
  static final int DEFAULT_SAMPLES = StepMemory.PRUNE_DEFAULT_SAMPLES;

  static final int DEFAULT_SEQ_LEN = StepMemory.PRUNE_DEFAULT_SEQ_LEN;
  private static final long SEED = 1234;

  private static final Logger LOG = LoggerFactory.getLogger(PruningStage.class);

  /**
   * Magnitude, Wanda, SparseGPT and expert pruning (their calibration passes included) run on the
   * CPU.
   */
  @Override
  public void checkDevice(String device) {
    Devices.requireCpu(
        device, "pruning (magnitude, Wanda, SparseGPT, experts and their calibration)");
  }

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    StageSpec spec = StageSpec.fromJson(StageKind.PRUNE, ctx.request().getParamsJson());
    PruneParams params = (PruneParams) spec.params();
    RecipeModelCheck.requireMemory(spec, ModelConfig.read(ctx.inputDir()), ctx.memoryBudgetBytes());
    PruneParams.Recovery recovery = params.recovery();
    if (recovery != null && recovery.rounds() > 1) {
      return iterative(ctx, spec, params);
    }
    StageResult pruned = prune(ctx, spec, params);
    return recovery == null ? pruned : recover(ctx, spec, recovery, pruned);
  }

  private static StageResult prune(StageContext ctx, StageSpec spec, PruneParams params)
      throws Exception {
    if (params.experts() != null) {
      return experts(ctx, spec, params.experts());
    }
    if (params.moefy() != null) {
      return moefy(ctx, spec, params.moefy());
    }
    if (params.depth() != null) {
      return depth(ctx, spec, params.depth());
    }
    if (params.structured() != null) {
      return structured(ctx, spec, params.structured());
    }
    PruningSpec.Method method = PruningSpec.Method.parse(params.method().key());
    PruningSpec pruning =
        params.pattern() != null
            ? PruningSpec.of(method, params.pattern())
            : PruningSpec.of(method, params.sparsity());
    PruningOutput output = params.output();
    output.check(pruning);
    // a sparse format is written from the dense pruned model, which goes to a scratch dir first
    boolean sparse = output.format() != PruningOutput.Format.DENSE;
    Path denseOut = sparse ? Pruning.denseScratch(ctx.outputDir()) : ctx.outputDir();
    PruningReport report;
    Map<String, Double> cleaning = new LinkedHashMap<>();
    try {
      if (params.method() == PruneParams.Method.MAGNITUDE) {
        report = new MagnitudePruner(pruning).prune(ctx.inputDir(), denseOut);
      } else if (params.method() == PruneParams.Method.SPARSEGPT) {
        Calibration cal = calibration(ctx, spec);
        ctx.progress().report(0.1, "SparseGPT, layer by layer on " + cal.dataset());
        List<int[]> windows = windows(ctx, cal, cleaning);
        ctx.checkCancelled();
        report =
            new SparseGptPruner(pruning, output)
                .prune(ctx.inputDir(), denseOut, windows, Pruning.SPARSEGPT_BATCH);
      } else {
        Calibration cal = calibration(ctx, spec);
        ctx.progress().report(0.1, "calibrating Wanda on " + cal.dataset());
        List<int[]> windows = windows(ctx, cal, cleaning);
        InputNormCollector norms;
        try (Transformer model = Transformer.load(ctx.inputDir(), Device.cpu());
            NDManager manager = NDManager.newBaseManager()) {
          norms = WandaPruner.calibrate(model::logits, manager, windows, 4);
        }
        ctx.checkCancelled();
        ctx.progress().report(0.6, "pruning");
        report = new WandaPruner(pruning).prune(ctx.inputDir(), denseOut, norms);
      }
      if (sparse) {
        ctx.progress().report(0.95, "writing " + output.format().value());
        Pruning.writeSparse(output, denseOut, ctx.outputDir());
      }
    } finally {
      if (sparse) {
        Pruning.deleteTree(denseOut);
      }
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("sparsity", report.overallSparsity());
    metrics.put("targetSparsity", params.sparsity());
    if (params.pattern() != null) {
      metrics.put("patternN", (double) params.pattern().n());
      metrics.put("patternM", (double) params.pattern().m());
    }
    if (output.wbits() != 0) {
      metrics.put("wbits", (double) output.wbits());
      metrics.put("groupSize", (double) output.groupSize());
    }
    metrics.put("prunedTensors", (double) report.tensors().size());
    metrics.put("prunedElements", (double) report.prunedElements());
    metrics.put("calibrationTokens", (double) report.calibrationTokens());
    metrics.putAll(cleaning);
    if (!report.expertTokens().isEmpty()) {
      // Wanda on a mixture of experts: experts with too few routed tokens fell back to magnitude
      metrics.put("uncalibratedExperts", (double) report.uncalibratedExperts().size());
    }
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * Expert pruning or merging: per-expert statistics from the model's own forward on the
   * calibration windows, then the rewrite to {@code keep} experts per layer. Metrics: the experts
   * before and after, and per layer a bitmask of the old experts kept (pruning) or used as group
   * centres (merging), bit e for expert e.
   */
  private static StageResult experts(StageContext ctx, StageSpec spec, PruneParams.Experts experts)
      throws Exception {
    ModelConfig c = ModelConfig.read(ctx.inputDir());
    // a step sent without the job-start check still gets its message before any work
    RecipeModelCheck.requireSupported(spec, c);
    Calibration cal = calibration(ctx, spec);
    ctx.progress().report(0.1, "expert statistics on " + cal.dataset());
    List<int[]> windows = windows(ctx, cal);
    ExpertStatistics stats = ExpertStatistics.collect(ctx.inputDir(), windows, Device.cpu());
    ctx.checkCancelled();
    ctx.progress().report(0.6, experts.method().key() + " to " + experts.keep() + " experts");
    Map<String, String> provenance = new LinkedHashMap<>();
    provenance.put("compactor.prune.method", "experts");
    provenance.put("compactor.prune.granularity", "expert");
    provenance.put("compactor.prune.experts.method", experts.method().key());
    provenance.put("compactor.prune.experts.keep", Integer.toString(experts.keep()));
    List<int[]> kept = new ArrayList<>();
    if (experts.method() == PruneParams.ExpertMethod.MERGE) {
      ExpertMerger.merge(ctx.inputDir(), ctx.outputDir(), stats, experts.keep(), provenance);
      for (int layer = 0; layer < c.numLayers(); layer++) {
        // the merger's group centres
        kept.add(
            c.sparseLayer(layer)
                ? ExpertPruner.keep(stats.frequencies(layer), experts.keep())
                : new int[0]);
      }
    } else {
      ExpertScore score = ExpertScore.parse(experts.method().key());
      kept =
          ExpertPruner.prune(
              ctx.inputDir(), ctx.outputDir(), stats, score, experts.keep(), provenance);
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("experts", (double) c.numExperts());
    metrics.put("keptExperts", (double) experts.keep());
    int firstSparse = 0;
    while (!c.sparseLayer(firstSparse)) {
      firstSparse++;
    }
    metrics.put("calibrationTokens", (double) stats.tokens(firstSparse));
    for (int layer = 0; layer < kept.size(); layer++) {
      long mask = 0;
      for (int e : kept.get(layer)) {
        mask |= 1L << e;
      }
      metrics.put("keptExpertMask.layer" + layer, (double) mask);
    }
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * MoEfication: every dense MLP split into {@code experts} equal experts by clustering its neurons
   * on the calibration windows, and a linear router per layer trained to pick a token's {@code k}
   * heaviest experts. The last quarter of the windows (at least one) is held out: the router's
   * recall is measured on it, not on what it was trained on. The output is a dense checkpoint
   * (neurons reordered expert by expert) that Hugging Face runs as the dense model, with the
   * routers and the {@code compactor_moefication} config field that make Compactor run only the
   * top-k expert slices per token. Metrics: FLOPs per token before and after (decoder linears,
   * routers and head), the MLP share, and the routers' held-out recall and routed activation mass.
   */
  private static StageResult moefy(StageContext ctx, StageSpec spec, PruneParams.Moefy moefy)
      throws Exception {
    ModelConfig c = ModelConfig.read(ctx.inputDir());
    // a step sent without the job-start check still gets its message before any work
    RecipeModelCheck.requireSupported(spec, c);
    Calibration cal = calibration(ctx, spec);
    List<int[]> windows = windows(ctx, cal);
    if (windows.size() < 2) {
      throw new IllegalArgumentException(
          "moefication needs at least 2 calibration windows (training and held-out), found "
              + windows.size());
    }
    int heldOutCount = Math.max(1, windows.size() / 4);
    List<int[]> train = windows.subList(0, windows.size() - heldOutCount);
    List<int[]> heldOut = windows.subList(windows.size() - heldOutCount, windows.size());
    ctx.checkCancelled();
    ctx.progress().report(0.1, "moefication on " + cal.dataset());
    int k = moefy.k();
    Moefier.Settings settings =
        new Moefier.Settings(
            Moefier.Clustering.valueOf(moefy.clustering().name()),
            moefy.experts(),
            new int[] {k},
            Moefier.DEFAULT_CLUSTER_TOKENS,
            Moefier.DEFAULT_KMEANS_ITERATIONS,
            RouterTrainer.Settings.defaults(SEED).withSteps(moefy.routerSteps()),
            SEED);
    Map<String, String> provenance = new LinkedHashMap<>();
    provenance.put("format", "pt");
    provenance.put("compactor.prune.method", "moefy");
    provenance.put("compactor.prune.granularity", "expert");
    provenance.put("compactor.prune.moefy.experts", Integer.toString(moefy.experts()));
    provenance.put("compactor.prune.moefy.k", Integer.toString(k));
    provenance.put("compactor.prune.moefy.clustering", moefy.clustering().key());
    Moefier.Plan plan;
    try (Transformer dense = Transformer.load(ctx.inputDir(), Device.cpu())) {
      plan =
          Moefier.plan(
              dense,
              train,
              heldOut,
              settings,
              (phase, done, total) ->
                  ctx.progress()
                      .report(0.1 + 0.8 * done / total, phase + ": " + done + "/" + total));
      ctx.checkCancelled();
      ctx.progress().report(0.9, "writing the MoEfied model (k = " + k + ")");
      Moefier.write(dense, plan, k, ctx.outputDir(), Moefier.storage(c), provenance);
    }
    ModelDirectory.copyAuxiliaryFiles(ctx.inputDir(), ctx.outputDir());
    Map<String, Double> metrics = new LinkedHashMap<>();
    int e = moefy.experts();
    metrics.put("experts", (double) e);
    metrics.put("expertsPerToken", (double) k);
    metrics.put("denseMlpFlopsPerToken", (double) MoeFlops.denseMlp(c) * c.numLayers());
    metrics.put("mlpFlopsPerToken", (double) MoeFlops.moefiedMlp(c, e, k) * c.numLayers());
    metrics.put("denseFlopsPerToken", (double) MoeFlops.total(c, MoeFlops.denseMlp(c)));
    metrics.put("flopsPerToken", (double) MoeFlops.total(c, MoeFlops.moefiedMlp(c, e, k)));
    metrics.put("routerRecall", plan.meanRecall(k));
    metrics.put("routedMassShare", plan.meanRoutedMass(k));
    metrics.put("oracleMassShare", plan.meanOracleMass(k));
    metrics.put("calibrationTokens", (double) plan.trainTokens());
    metrics.put("heldOutTokens", (double) plan.heldOutTokens());
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * Structured pruning: heads and MLP channels scored on the calibration windows layer by layer and
   * removed, the same count in every layer. Metrics: heads, KV heads, channels and parameters
   * after, and per layer bitmasks of the removed query heads and KV heads.
   */
  private static StageResult structured(StageContext ctx, StageSpec spec, StructuredSpec structured)
      throws Exception {
    ModelConfig c = ModelConfig.read(ctx.inputDir());
    // a step sent without the job-start check still gets its message before any work
    RecipeModelCheck.requireSupported(spec, c);
    Calibration cal = calibration(ctx, spec);
    List<int[]> windows = windows(ctx, cal);
    ctx.checkCancelled();
    ctx.progress().report(0.1, "structured pruning, layer by layer on " + cal.dataset());
    StructuredReport report =
        new StructuredPruner(structured)
            .prune(
                ctx.inputDir(),
                ctx.outputDir(),
                windows,
                Map.of(),
                (fraction, message) -> ctx.progress().report(0.1 + 0.9 * fraction, message));
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("heads", (double) report.headsAfter());
    metrics.put("kvHeads", (double) report.kvHeadsAfter());
    metrics.put("intermediateSize", (double) report.channelsAfter());
    metrics.put("parametersBefore", (double) report.parametersBefore());
    metrics.put("parametersAfter", (double) report.parametersAfter());
    metrics.put("calibrationTokens", (double) report.calibrationTokens());
    for (StructuredReport.Layer l : report.layers()) {
      metrics.put("removedHeadMask.layer" + l.layer(), (double) mask(l.removedHeads()));
      metrics.put("removedKvHeadMask.layer" + l.layer(), (double) mask(l.removedKvHeads()));
      if (structured.widths() == StructuredSpec.Widths.PER_LAYER) {
        metrics.put(
            "intermediateSize.layer" + l.layer(),
            (double) (c.intermediateSize() - l.removedChannels().length));
      }
    }
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  private static long mask(int[] bits) {
    long m = 0;
    for (int b : bits) {
      m |= 1L << b;
    }
    return m;
  }

  /**
   * Depth pruning: layer scores from the model's own forward on the calibration windows, streamed
   * layer by layer, then the model rewritten without the {@code drop} layers the method picks.
   * Metrics: layers before and after, the removed layers as a bitmask (bit i for old layer i), and
   * every layer's block influence.
   */
  private static StageResult depth(StageContext ctx, StageSpec spec, PruneParams.Depth depth)
      throws Exception {
    ModelConfig c = ModelConfig.read(ctx.inputDir());
    RecipeModelCheck.requireSupported(spec, c);
    Calibration cal = calibration(ctx, spec);
    ctx.progress().report(0.1, "layer scores on " + cal.dataset());
    List<int[]> windows = windows(ctx, cal);
    ctx.checkCancelled();
    DepthPruning.Result result =
        DepthPruning.run(
            ctx.inputDir(),
            ctx.outputDir(),
            depth.method(),
            depth.drop(),
            windows,
            TokenPositions.ALL,
            (layer, layers, bi) ->
                ctx.progress()
                    .report(
                        0.1 + 0.8 * (layer + 1) / layers,
                        String.format("scored layer %d/%d (BI %.4f)", layer + 1, layers, bi)),
            Map.of());
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("layers", (double) result.layersBefore());
    metrics.put("keptLayers", (double) result.layersAfter());
    long mask = 0;
    for (int layer : result.removed()) {
      mask |= 1L << layer;
    }
    metrics.put("removedLayerMask", (double) mask);
    metrics.put("calibrationTokens", (double) result.tokens());
    for (int layer = 0; layer < result.layersBefore(); layer++) {
      metrics.put("blockInfluence.layer" + layer, result.scores().blockInfluence()[layer]);
    }
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * Recovery after one-shot pruning: the pruned model (moved from the output directory to scratch)
   * is distilled from the input model with its zeros, heads and layers kept, and the result
   * replaces it only when it is closer to the input on held-out windows ({@link
   * PruningRecovery#recoverIfBetter}). Metrics: the pruning's, plus the held-out KL before and
   * after and whether the recovered model was kept.
   */
  private static StageResult recover(
      StageContext ctx, StageSpec spec, PruneParams.Recovery recovery, StageResult pruned)
      throws Exception {
    ctx.checkCancelled();
    Path prunedDir = ctx.workDir().resolve("pruned-before-recovery");
    Files.move(ctx.outputDir(), prunedDir);
    Files.createDirectories(ctx.outputDir());
    Calibration cal = calibration(ctx, spec);
    PruneParams.RecoveryWindows w = recoveryWindows(ctx, cal, recovery);
    ctx.progress()
        .report(0.7, "recovery: " + recovery.steps() + " distillation steps from the input model");
    PruningRecovery.Checked checked =
        PruningRecovery.recoverIfBetter(
            ctx.inputDir(),
            prunedDir,
            ctx.outputDir(),
            w.train(),
            w.heldOut(),
            recovery.perRound(),
            ctx.workDir().resolve("recovery-checkpoints"),
            Device.cpu());
    if (checked.note() != null) {
      LOG.info("{}", checked.note());
    }
    Map<String, Double> metrics = new LinkedHashMap<>(pruned.metrics());
    metrics.put("recoverySteps", (double) recovery.steps());
    metrics.put("recoveryKept", checked.kept() ? 1.0 : 0.0);
    if (!Double.isNaN(checked.klBefore())) {
      metrics.put("recoveryHeldOutKlBefore", checked.klBefore());
    }
    if (!Double.isNaN(checked.klAfter())) {
      metrics.put("recoveryHeldOutKlAfter", checked.klAfter());
    }
    return StageResult.of(ctx.outputDir(), pruned.format(), metrics);
  }

  /**
   * Iterative pruning: the sparsity reached in {@code rounds} rounds of the cubic schedule, each
   * pruning the previous round's recovered model and recovering it from the input model.
   */
  private static StageResult iterative(StageContext ctx, StageSpec spec, PruneParams params)
      throws Exception {
    PruneParams.Recovery recovery = params.recovery();
    Calibration cal = calibration(ctx, spec);
    // magnitude reads no calibration; Wanda and SparseGPT read the same windows every round
    List<List<int[]>> calibration = new ArrayList<>();
    Supplier<List<int[]>> windows =
        () -> {
          if (calibration.isEmpty()) {
            try {
              calibration.add(windows(ctx, cal));
            } catch (Exception e) {
              throw new IllegalStateException("reading the calibration windows", e);
            }
          }
          return calibration.get(0);
        };
    PruneParams.RecoveryWindows w = recoveryWindows(ctx, cal, recovery);
    PruningSpec pruning =
        PruningSpec.of(PruningSpec.Method.parse(params.method().key()), params.sparsity());
    ctx.progress()
        .report(0.1, recovery.rounds() + " rounds of pruning and recovery to " + params.sparsity());
    List<PruningRecovery.Round> rounds =
        PruningRecovery.iterative(
            pruning,
            recovery.rounds(),
            recovery.perRound(),
            ctx.inputDir(),
            ctx.workDir().resolve("iterative"),
            ctx.outputDir(),
            windows,
            w.train(),
            Device.cpu());
    PruningReport last = rounds.get(rounds.size() - 1).pruning();
    Map<String, Double> metrics = new LinkedHashMap<>();
    // recovery keeps every zero, so the last round's count is the output's
    metrics.put("sparsity", last.overallSparsity());
    metrics.put("targetSparsity", params.sparsity());
    metrics.put("rounds", (double) rounds.size());
    metrics.put("recoverySteps", (double) recovery.steps());
    metrics.put("prunedTensors", (double) last.tensors().size());
    metrics.put("calibrationTokens", (double) last.calibrationTokens());
    if (!w.heldOut().isEmpty()) {
      try (Transformer dense = Transformer.load(ctx.inputDir(), Device.cpu());
          Transformer out = Transformer.load(ctx.outputDir(), Device.cpu())) {
        metrics.put("recoveryHeldOutKlAfter", Distiller.meanKl(dense, out, w.heldOut(), 4));
      }
    }
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  private static PruneParams.RecoveryWindows recoveryWindows(
      StageContext ctx, Calibration cal, PruneParams.Recovery recovery) throws Exception {
    Corpus corpus = Corpus.forDataset(cal.dataset(), ctx::fetch);
    try (TextTokenizer tokenizer = Tokenizers.forModel(ctx.inputDir())) {
      PruneParams.RecoveryWindows w =
          recovery.windows(corpus, tokenizer, ModelConfig.read(ctx.inputDir()).maxPositions());
      if (w.note() != null) {
        LOG.info("{}", w.note());
      }
      return w;
    }
  }

  private static List<int[]> windows(StageContext ctx, Calibration cal) throws IOException {
    return windows(ctx, cal, new LinkedHashMap<>());
  }

  /** The calibration windows; the counts of a {@code calibration.clean} pass go to {@code into}. */
  private static List<int[]> windows(StageContext ctx, Calibration cal, Map<String, Double> into)
      throws IOException {
    Calibration.Windows w = cal.windowsAndCleaning(ctx.inputDir(), ctx::fetch, SEED);
    w.cleaning().ifPresent(r -> LOG.info("calibration cleaned: {}", r.toText().strip()));
    into.putAll(w.metrics());
    return w.windows();
  }

  private static Calibration calibration(StageContext ctx, StageSpec spec) {
    return Calibration.orDefault(
        spec.calibration(), ctx.request().getCalibrationUri(), DEFAULT_SAMPLES, DEFAULT_SEQ_LEN);
  }
}
