package dev.compactor.services.evaluation;

import ai.djl.Device;
import ai.djl.engine.Engine;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.cascade.CascadeStudy;
import dev.compactor.core.cascade.ConfidenceSignal;
import dev.compactor.core.cascade.Granularity;
import dev.compactor.core.cascade.ModelFlops;
import dev.compactor.core.cascade.RoutingPolicy;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.device.ComputeDevice;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.infer.InferThreads;
import dev.compactor.core.infer.NativeSpeed;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EnergyMeter;
import dev.compactor.core.metrics.EnergyMeters;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.LatencyProbe;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.metrics.PeakMemory;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.metrics.SpeedSweep;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.recipe.EvaluateParams;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.tasks.BuiltinTasks;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tasks.TaskFile;
import dev.compactor.core.tasks.TaskResult;
import dev.compactor.core.tasks.TaskScorer;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EnergyFigures;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.NativeSpeedPoint;
import dev.compactor.events.SpeedPoint;
import dev.compactor.events.StoredFile;
import dev.compactor.events.TaskScore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Measures the job's compressed model against its uncompressed baseline on held-out text:
 * perplexity and bits per byte of both, KL divergence and top-1 agreement of their next-token
 * distributions, size, parameter count, sparsity, and latency (prefill ms/token, decode tokens/s).
 * Publishes the figures as the public {@code EvaluationCompleted} event and stores them as an
 * {@link EvaluationReport} for the job's publish step.
 *
 * <p>The text is the test split of the recipe's calibration corpus (or the built-in Europarl corpus
 * for {@code builtin:europarl} or no calibration), cut to {@code maxChars} characters so an
 * evaluation takes seconds on a small model.
 *
 * <p>What the numbers are: {@code sizeBytes} is the bytes of the artifact's smallest stored form
 * ({@link StoredForms}: the safetensors directory, each GGUF file, the compressed-tensors
 * directory) as written, named by {@code sizeFormat}, with every file listed; {@code
 * baselineSizeBytes} is the baseline's files. Quality and latency are measured on the dequantized
 * safetensors weights in fp32 on DJL ({@code latencyMeasuredWith}), not with the GGUF or
 * compressed-tensors kernels. {@code peakRssBytes} is this step's own peak ({@link
 * PeakMemory#startStep}), absent where the high-water mark cannot be reset.
 *
 * <p>Latency is a {@link SpeedSweep} over the recipe's batch sizes and context lengths (typed in
 * the event's {@code speed}); with {@code energy: true} the same runs give joules per token of both
 * models from the best meter here ({@link EnergyMeters}), typed in {@code energy} with its kind
 * ({@code measured} or {@code estimated}) and source.
 *
 * <p>With {@code native_speed} the quantized outputs are also measured where their format runs:
 * each llama GGUF file of the artifact by the native GGUF decoder ({@link NativeSpeed}, engine
 * {@code native-gguf}), against the original written as an F32 GGUF by the project's exporter into
 * the step's scratch directory and run the same way in the same step (typed in the event's {@code
 * nativeSpeed}, metrics {@code native.<file>.*}). The DJL figures are engine {@code
 * djl-dequantized}.
 */
public final class EvaluationStage implements Stage {

  /** Stores a report at a location. */
  @FunctionalInterface
  public interface ReportStore {
    void put(S3Uri location, byte[] json) throws IOException;
  }

  /** Default cut of the evaluation text: a few thousand tokens. */
  public static final int DEFAULT_MAX_CHARS = 6_000;

  /** Tokens per window of the cascade's curve. */
  private static final int CASCADE_SEQ_LEN = 128;

  private final ReportStore reports;
  private final int maxChars;

  public EvaluationStage(ReportStore reports, int maxChars) {
    this.reports = reports;
    this.maxChars = maxChars;
  }

  /**
   * Computes on {@code COMPACTOR_DEVICE} when this engine really has it (see {@link
   * ComputeDevice}).
   */
  @Override
  public void checkDevice(String device) {
    ComputeDevice.resolve(device);
  }

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    PeakMemory.StepWindow memory = PeakMemory.startStep();
    StageSpec spec = StageSpec.fromJson(StageKind.EVALUATE, ctx.request().getParamsJson());
    EvaluateParams p = (EvaluateParams) spec.params();
    RecipeModelCheck.requireMemory(spec, ModelConfig.read(ctx.inputDir()), ctx.memoryBudgetBytes());
    ArtifactRef modelRef = require(ctx.request().getInput(), "input");
    ArtifactRef baselineRef = require(ctx.request().getBaseline(), "baseline");
    Device device = ComputeDevice.resolve(ctx.device());
    Path modelDir = ctx.inputDir();
    Path baseDir = ctx.baselineDir();
    StoredForms stored = StoredForms.scan(modelDir);
    // refused before anything is measured: no GGUF, an arch the native decoder does not run
    List<String> nativeFiles =
        p.nativeSpeed() == null ? List.of() : nativeSpeedFiles(stored, baseDir);
    String dataset = ctx.request().getCalibrationUri();
    Corpus corpus = Corpus.forDataset(dataset, ctx::fetch);
    String text = corpus.testText();
    if (text.length() > maxChars) {
      text = text.substring(0, maxChars);
    }
    Map<String, Double> m = new LinkedHashMap<>();
    String latencyMeasuredWith = null;
    Speed speed = null;
    List<TaskScore> taskScores = new ArrayList<>();
    byte[] routingPolicy = null;
    int[] evalTokens;
    ModelDirectory model = ModelDirectory.open(modelDir);
    ModelDirectory base = ModelDirectory.open(baseDir);
    try (TextTokenizer tokenizer = Tokenizers.forModel(baseDir);
        Transformer candidate = Transformer.load(modelDir, device);
        Transformer baseline = Transformer.load(baseDir, device)) {
      EvalText eval = EvalText.of(tokenizer, text);
      evalTokens = eval.tokens();
      m.put("evalTokens", (double) eval.tokens().length);
      ProgressListener progress =
          (phase, done, total) -> ctx.progress().report(0.9 * done / Math.max(1, total), phase);
      // perplexity and KL in disjoint windows of one length run the same forward passes: each
      // model's logits are kept from the first so the second costs no model call
      boolean sameWindows =
          p.perplexity() != null
              && p.kl()
              && p.perplexity().stride()
                  >= Math.min(p.perplexity().seqLen(), candidate.maxSequenceLength());
      long keep = sameWindows ? Runtime.getRuntime().maxMemory() / 8 : 0;
      MemoizedLogits baselineLogits = new MemoizedLogits(baseline, keep);
      MemoizedLogits candidateLogits = new MemoizedLogits(candidate, keep);
      if (p.perplexity() != null) {
        int seq = Math.min(p.perplexity().seqLen(), candidate.maxSequenceLength());
        int stride = Math.min(p.perplexity().stride(), seq);
        PerplexityEvaluator ppl = new PerplexityEvaluator(seq, stride);
        PerplexityResult b =
            ppl.evaluate(baselineLogits, eval.tokens(), eval.scoredBytes(), progress);
        ctx.checkCancelled();
        PerplexityResult c =
            ppl.evaluate(candidateLogits, eval.tokens(), eval.scoredBytes(), progress);
        m.put("perplexity", c.perplexity());
        m.put("baselinePerplexity", b.perplexity());
        m.put("bitsPerByte", c.bitsPerByte());
        m.put("baselineBitsPerByte", b.bitsPerByte());
        m.put("evalTokensPerSecond", c.tokensPerSecond());
        m.put("perplexityIncrease", c.perplexity() / b.perplexity() - 1);
      }
      if (p.kl()) {
        int seq =
            Math.min(
                p.perplexity() == null ? 128 : p.perplexity().seqLen(),
                candidate.maxSequenceLength());
        DivergenceResult d =
            new DivergenceEvaluator(seq, seq)
                .evaluate(baselineLogits, candidateLogits, eval.tokens(), progress);
        m.put("klDivergence", d.klDivergence());
        m.put("klMax", d.klMax());
        m.put("top1Agreement", d.top1Agreement());
      }
      baselineLogits.close(); // heap only: drops the kept logits before latency and tasks
      candidateLogits.close();
      ctx.checkCancelled();
      if (p.latency()) {
        speed = speed(p, device, candidate, baseline, eval.tokens(), m);
        latencyMeasuredWith = latencyLabel(candidate.device());
      }
      if (p.tasks() != null) {
        taskScores = tasks(ctx, p.tasks(), candidate, baseline, tokenizer, m);
      }
      if (p.cascade() != null) {
        ctx.checkCancelled();
        routingPolicy =
            cascade(p.cascade(), candidate, baseline, modelDir, baseDir, tokenizer, eval, m);
      }
    }
    List<NativeSpeedPoint> nativePoints = List.of();
    String nativeMeasuredWith = null;
    if (p.nativeSpeed() != null) {
      // after the DJL models are closed: the F32 reference and each GGUF are loaded one at a time
      ctx.checkCancelled();
      ctx.progress().report(0.92, "native speed");
      NativeSpeed.Settings settings =
          new NativeSpeed.Settings(
              p.nativeSpeed().promptTokens(),
              p.nativeSpeed().decodeTokens(),
              p.nativeSpeed().repeats(),
              p.nativeSpeed().threads() == null
                  ? InferThreads.fromEnvironment()
                  : p.nativeSpeed().threads());
      nativeMeasuredWith = nativeLabel(settings.threads());
      nativePoints =
          nativeSpeed(
              settings,
              nativeMeasuredWith,
              nativeFiles,
              modelDir,
              baseDir,
              ctx.workDir(),
              evalTokens,
              m);
    }
    StoredForms.Form smallest = stored.smallest();
    long baselineBytes =
        StoredForms.scan(baseDir).files().stream().mapToLong(f -> f.getSizeBytes()).sum();
    m.put("sizeBytes", (double) smallest.bytes());
    m.put("baselineSizeBytes", (double) baselineBytes);
    m.put("sizeRatio", (double) smallest.bytes() / baselineBytes);
    for (StoredForms.Form f : stored.forms()) {
      m.put("sizeBytes." + f.name(), (double) f.bytes());
    }
    m.put("parameterCount", (double) model.parameterCount());
    m.put("baselineParameterCount", (double) base.parameterCount());
    m.put("sparsity", WeightSparsity.of(modelDir).fraction());
    m.put("baselineSparsity", WeightSparsity.of(baseDir).fraction());
    long peak = memory.peakRssBytes();
    if (peak > 0 && speed != null) {
      // The sweep reset the high-water mark per configuration; its readings before each reset
      // keep the step's own peak.
      peak = Math.max(peak, speed.peakBeforeResets);
    }
    if (peak > 0) {
      m.put("peakRssBytes", (double) peak);
    }
    m.values().removeIf(v -> v == null || v.isNaN() || v.isInfinite());

    String bucket = EvaluationReport.bucketOf(modelRef.getUri());
    EvaluationReport report =
        new EvaluationReport(
            ctx.jobId(),
            modelRef.getSha256(),
            baselineRef.getSha256(),
            m,
            datasetName(dataset),
            smallest.name(),
            stored.files(),
            latencyMeasuredWith,
            memory.measures(),
            speed == null ? null : speed.energyLabel,
            nativeMeasuredWith);
    reports.put(
        EvaluationReport.location(bucket, ctx.jobId(), modelRef.getSha256()), report.toJson());
    if (routingPolicy != null) {
      reports.put(routingPolicyLocation(bucket, ctx.jobId(), modelRef.getSha256()), routingPolicy);
    }
    ctx.progress().report(1.0, "evaluated");
    return StageResult.withoutArtifact(m)
        .withEvent(
            Topics.EVALUATION_COMPLETED,
            EvaluationCompleted.newBuilder()
                .setJobId(ctx.jobId())
                .setStep(ctx.request().getStep())
                .setModel(modelRef)
                .setBaseline(baselineRef)
                .setMetrics(toAvro(m))
                .setExtra(extra(m))
                .setDatasetUri(datasetName(dataset))
                .setSizeFormat(smallest.name())
                .setStoredFiles(stored.files())
                .setLatencyMeasuredWith(latencyMeasuredWith)
                .setTasks(taskScores)
                .setEnergy(speed == null ? null : speed.energy)
                .setSpeed(speed == null ? List.of() : speed.points)
                .setNativeSpeed(nativePoints)
                .setCompletedAtMs(System.currentTimeMillis())
                .build());
  }

  /** The typed speed points, the energy figures and their label, from one sweep of each model. */
  private record Speed(
      List<SpeedPoint> points, EnergyFigures energy, String energyLabel, long peakBeforeResets) {}

  /**
   * The latency sweep ({@link SpeedSweep}) of candidate and baseline with the same energy meter:
   * metrics {@code prefillMsPerToken}, {@code decodeTokensPerSecond} and their baseline's from the
   * first configuration as before, {@code decodeSpeedup}; per configuration {@code
   * speed.b<batch>.c<context>.*}; with energy {@code energy.joulesPerToken}, {@code
   * .baselineJoulesPerToken}, {@code .joulesPerPrefillToken}, {@code
   * .baselineJoulesPerPrefillToken}, {@code .ratio} and {@code .measured} (1 measured, 0
   * estimated).
   */
  private static Speed speed(
      EvaluateParams p,
      Device device,
      CausalLM candidate,
      CausalLM baseline,
      int[] tokens,
      Map<String, Double> m) {
    EvaluateParams.Speed s = p.speed();
    SpeedSweep.Config config =
        new SpeedSweep.Config(s.batchSizes(), s.contextLengths(), s.decodeTokens(), s.repeats());
    EnergyMeters.Choice choice =
        p.energy() ? EnergyMeters.forThisMachine(device.isGpu() ? device.getDeviceId() : -1) : null;
    try (EnergyMeter meter = choice == null ? null : choice.meter()) {
      SpeedSweep sweep = new SpeedSweep(config, meter);
      SpeedSweep.Result c = sweep.measure(candidate, tokens);
      SpeedSweep.Result b = sweep.measure(baseline, tokens);
      List<SpeedPoint> points = new ArrayList<>();
      for (int i = 0; i < c.points().size(); i++) {
        dev.compactor.core.metrics.SpeedPoint pc = c.points().get(i);
        dev.compactor.core.metrics.SpeedPoint pb = b.points().get(i);
        String k = "speed.b" + pc.batch() + ".c" + pc.contextLength() + ".";
        m.put(k + "prefillTokensPerSecond", pc.prefillTokensPerSecond());
        m.put(k + "decodeTokensPerSecond", pc.decodeTokensPerSecond());
        m.put(k + "baselinePrefillTokensPerSecond", pb.prefillTokensPerSecond());
        m.put(k + "baselineDecodeTokensPerSecond", pb.decodeTokensPerSecond());
        if (pc.peakRssBytes() > 0) {
          m.put(k + "peakRssBytes", (double) pc.peakRssBytes());
          m.put(k + "baselinePeakRssBytes", (double) pb.peakRssBytes());
        }
        if (meter != null) {
          m.put(k + "joulesPerToken", pc.decodeJoulesPerToken());
          m.put(k + "baselineJoulesPerToken", pb.decodeJoulesPerToken());
        }
        points.add(
            SpeedPoint.newBuilder()
                .setBatch(pc.batch())
                .setContextLength(pc.contextLength())
                .setDecodeTokens(pc.decodeTokens())
                .setPrefillTokensPerSecond(pc.prefillTokensPerSecond())
                .setDecodeTokensPerSecond(pc.decodeTokensPerSecond())
                .setBaselinePrefillTokensPerSecond(pb.prefillTokensPerSecond())
                .setBaselineDecodeTokensPerSecond(pb.decodeTokensPerSecond())
                .setPeakBytes(pc.peakRssBytes() > 0 ? pc.peakRssBytes() : null)
                .setBaselinePeakBytes(pb.peakRssBytes() > 0 ? pb.peakRssBytes() : null)
                .setCandidateJoulesPerToken(orNull(pc.decodeJoulesPerToken()))
                .setBaselineJoulesPerToken(orNull(pb.decodeJoulesPerToken()))
                .build());
      }
      dev.compactor.core.metrics.SpeedPoint fc = c.points().get(0);
      dev.compactor.core.metrics.SpeedPoint fb = b.points().get(0);
      m.put("prefillMsPerToken", 1000 / fc.prefillTokensPerSecond());
      m.put("decodeTokensPerSecond", fc.decodeTokensPerSecond());
      m.put("baselinePrefillMsPerToken", 1000 / fb.prefillTokensPerSecond());
      m.put("baselineDecodeTokensPerSecond", fb.decodeTokensPerSecond());
      m.put("decodeSpeedup", fc.decodeTokensPerSecond() / fb.decodeTokensPerSecond());
      EnergyFigures energy = null;
      String label = null;
      if (meter != null) {
        label = meter.label();
        m.put("energy.joulesPerToken", fc.decodeJoulesPerToken());
        m.put("energy.baselineJoulesPerToken", fb.decodeJoulesPerToken());
        m.put("energy.joulesPerPrefillToken", fc.prefillJoulesPerToken());
        m.put("energy.baselineJoulesPerPrefillToken", fb.prefillJoulesPerToken());
        m.put("energy.ratio", fc.decodeJoulesPerToken() / fb.decodeJoulesPerToken());
        m.put("energy.measured", meter.kind() == EnergyMeter.Kind.MEASURED ? 1.0 : 0.0);
        energy =
            EnergyFigures.newBuilder()
                .setKind(meter.kind().label())
                .setSource(meter.source())
                .setBatch(fc.batch())
                .setContextLength(fc.contextLength())
                .setCandidateJoulesPerToken(fc.decodeJoulesPerToken())
                .setBaselineJoulesPerToken(fb.decodeJoulesPerToken())
                .setCandidateJoulesPerPrefillToken(orNull(fc.prefillJoulesPerToken()))
                .setBaselineJoulesPerPrefillToken(orNull(fb.prefillJoulesPerToken()))
                .build();
      }
      return new Speed(
          points, energy, label, Math.max(c.peakRssBeforeResets(), b.peakRssBeforeResets()));
    }
  }

  /**
   * The artifact's GGUF files native speed runs.
   *
   * @throws UnsupportedOperationException when the artifact has no GGUF file, the model's GGUF arch
   *     is not llama, or the JVM runs without the Vector API module
   */
  static List<String> nativeSpeedFiles(StoredForms stored, Path baseDir) throws IOException {
    RecipeModelCheck.nativeSpeedArch(ModelConfig.read(baseDir))
        .ifPresent(
            why -> {
              throw new UnsupportedOperationException(why);
            });
    List<String> ggufs =
        stored.files().stream()
            .filter(f -> f.getFormat().equals(StoredForms.GGUF))
            .map(StoredFile::getPath)
            .toList();
    if (ggufs.isEmpty()) {
      throw new UnsupportedOperationException(
          "not supported yet: native speed of an artifact without a GGUF file (found "
              + stored.files().stream().map(StoredFile::getPath).toList()
              + "): export gguf in the quantize step");
    }
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
      throw new UnsupportedOperationException(
          "native_speed needs the JVM option --add-modules jdk.incubator.vector (the native GGUF"
              + " kernels use the Vector API); the compactor launcher, the worker processes, the"
              + " Dockerfile and the test runners pass it");
    }
    return ggufs;
  }

  /** The F32 reference's file in the step's scratch directory (deleted after the measurement). */
  static final String NATIVE_BASELINE_FILE = "native-speed-baseline-f32.gguf";

  /**
   * Native speed ({@link NativeSpeed}) of the original written as an F32 GGUF (the reference) and
   * of each GGUF file of the artifact, the same prompt (the evaluation text's first tokens) and
   * settings: per file metrics {@code native.<file>.prefillTokensPerSecond}, {@code
   * .decodeTokensPerSecond}, {@code .baselinePrefillTokensPerSecond}, {@code
   * .baselineDecodeTokensPerSecond}, {@code .prefillSpeedup}, {@code .decodeSpeedup} (candidate
   * over reference), {@code .threads}, {@code .promptTokens}, {@code .decodeTokens}, {@code
   * .repeats}.
   */
  private static List<NativeSpeedPoint> nativeSpeed(
      NativeSpeed.Settings settings,
      String measuredWith,
      List<String> ggufs,
      Path modelDir,
      Path baseDir,
      Path workDir,
      int[] prompt,
      Map<String, Double> m)
      throws IOException {
    Path reference = workDir.resolve(NATIVE_BASELINE_FILE);
    NativeSpeed.Result base;
    try {
      GgufExport.export(baseDir, LlamaFileType.F32, Map.of(), reference);
      base = NativeSpeed.measure(reference, prompt, settings);
    } finally {
      Files.deleteIfExists(reference);
    }
    List<NativeSpeedPoint> points = new ArrayList<>();
    for (String file : ggufs) {
      NativeSpeed.Result c = NativeSpeed.measure(modelDir.resolve(file), prompt, settings);
      String k = "native." + file + ".";
      m.put(k + "prefillTokensPerSecond", c.prefillTokensPerSecond());
      m.put(k + "decodeTokensPerSecond", c.decodeTokensPerSecond());
      m.put(k + "baselinePrefillTokensPerSecond", base.prefillTokensPerSecond());
      m.put(k + "baselineDecodeTokensPerSecond", base.decodeTokensPerSecond());
      m.put(k + "prefillSpeedup", c.prefillTokensPerSecond() / base.prefillTokensPerSecond());
      m.put(k + "decodeSpeedup", c.decodeTokensPerSecond() / base.decodeTokensPerSecond());
      m.put(k + "threads", (double) settings.threads());
      m.put(k + "promptTokens", (double) settings.promptTokens());
      m.put(k + "decodeTokens", (double) settings.decodeTokens());
      m.put(k + "repeats", (double) settings.repeats());
      points.add(
          NativeSpeedPoint.newBuilder()
              .setEngine(NativeSpeed.ENGINE)
              .setGguf(file)
              .setFileType(c.fileType())
              .setBaselineFileType(LlamaFileType.F32.name())
              .setThreads(settings.threads())
              .setPromptTokens(settings.promptTokens())
              .setDecodeTokens(settings.decodeTokens())
              .setRepeats(settings.repeats())
              .setPrefillTokensPerSecond(c.prefillTokensPerSecond())
              .setDecodeTokensPerSecond(c.decodeTokensPerSecond())
              .setBaselinePrefillTokensPerSecond(base.prefillTokensPerSecond())
              .setBaselineDecodeTokensPerSecond(base.decodeTokensPerSecond())
              .setMeasuredWith(measuredWith)
              .build());
    }
    return points;
  }

  /** What {@link NativeSpeed} ran on: engine, runtime, threads, CPUs, and the reference. */
  static String nativeLabel(int threads) {
    return "engine "
        + NativeSpeed.ENGINE
        + ": Compactor's GgufLlama (Vector API kernels, weights as stored, activations fp32) on "
        + System.getProperty("java.vm.name")
        + " "
        + Runtime.version()
        + ", "
        + threads
        + " thread(s) of "
        + Runtime.getRuntime().availableProcessors()
        + " CPU(s); reference: the original model written as an F32 GGUF by Compactor's exporter"
        + " and run the same way in the same step";
  }

  /**
   * Task accuracy of candidate and baseline on every task ({@link TaskScorer}, lm-eval's rules):
   * metrics {@code task.<name>.acc}, {@code .accStderr}, {@code .baselineAcc}, {@code .documents},
   * and for multiple choice {@code .accNorm}, {@code .accNormStderr}, {@code .baselineAccNorm}, for
   * continuations {@code .perplexity} and {@code .baselinePerplexity}; the same figures as the
   * event's typed {@code tasks}.
   */
  private static List<TaskScore> tasks(
      StageContext ctx,
      EvaluateParams.Tasks tasks,
      CausalLM candidate,
      CausalLM baseline,
      TextTokenizer tokenizer,
      Map<String, Double> m)
      throws Exception {
    Map<String, List<TaskDoc>> docs = new LinkedHashMap<>();
    for (String name : tasks.builtin()) {
      docs.put(name, BuiltinTasks.build(name, tasks.limit(), 0));
    }
    for (String uri : tasks.files()) {
      List<TaskDoc> all = TaskFile.read(ctx.fetch(uri));
      String file = uri.substring(uri.lastIndexOf('/') + 1).replaceFirst("\\.jsonl$", "");
      docs.put(file, all.subList(0, Math.min(tasks.limit(), all.size())));
    }
    List<TaskScore> scores = new ArrayList<>();
    TaskScorer c = new TaskScorer(candidate, tokenizer);
    TaskScorer b = new TaskScorer(baseline, tokenizer);
    int done = 0;
    for (Map.Entry<String, List<TaskDoc>> t : docs.entrySet()) {
      ctx.checkCancelled();
      ctx.progress().report(0.9, "task " + t.getKey() + " (" + (++done) + "/" + docs.size() + ")");
      TaskResult rc = c.evaluate(t.getKey(), t.getValue(), ProgressListener.NONE);
      TaskResult rb = b.evaluate(t.getKey(), t.getValue(), ProgressListener.NONE);
      String k = "task." + t.getKey() + ".";
      m.put(k + "documents", (double) rc.documents());
      m.put(k + "acc", rc.acc());
      m.put(k + "accStderr", rc.accStderr());
      m.put(k + "baselineAcc", rb.acc());
      m.put(k + "accNorm", rc.accNorm());
      m.put(k + "accNormStderr", rc.accNormStderr());
      m.put(k + "baselineAccNorm", rb.accNorm());
      m.put(k + "perplexity", rc.perplexity());
      m.put(k + "baselinePerplexity", rb.perplexity());
      scores.add(
          TaskScore.newBuilder()
              .setTask(t.getKey())
              .setDocuments(rc.documents())
              .setAcc(rc.acc())
              .setAccStderr(orNull(rc.accStderr()))
              .setBaselineAcc(rb.acc())
              .setAccNorm(orNull(rc.accNorm()))
              .setAccNormStderr(orNull(rc.accNormStderr()))
              .setBaselineAccNorm(orNull(rb.accNorm()))
              .setPerplexity(orNull(rc.perplexity()))
              .setBaselinePerplexity(orNull(rb.perplexity()))
              .build());
    }
    return scores;
  }

  /**
   * The candidate (small) and the baseline (large) as a cascade on the evaluation text ({@link
   * CascadeStudy#onText}, windows of up to 128 tokens; per request, each window's next token is a
   * request): figures {@code cascade.*} ({@link CascadeStudy#metrics}); returns the routing
   * policy's JSON, or null when no threshold meets the target ({@code cascade.targetMet} 0).
   */
  private static byte[] cascade(
      EvaluateParams.Cascade c,
      CausalLM candidate,
      CausalLM baseline,
      Path modelDir,
      Path baseDir,
      TextTokenizer tokenizer,
      EvalText eval,
      Map<String, Double> m)
      throws IOException {
    CascadeStudy.Settings settings =
        new CascadeStudy.Settings(
            ConfidenceSignal.of(c.signal()), Granularity.of(c.granularity()), c.target(), null);
    int seq = Math.min(CASCADE_SEQ_LEN, (eval.tokens().length - 1) / 2);
    CascadeStudy study =
        CascadeStudy.onText(
            candidate,
            baseline,
            ModelFlops.of(ModelConfig.read(modelDir)),
            ModelFlops.of(ModelConfig.read(baseDir)),
            tokenizer,
            eval.tokens(),
            seq,
            Integer.MAX_VALUE,
            "the evaluation text",
            CascadeStudy.TextRequests.NEXT_TOKEN,
            settings,
            ProgressListener.NONE);
    m.putAll(study.metrics());
    if (study.policy().isEmpty()) {
      return null;
    }
    return new ObjectMapper()
        .writerWithDefaultPrettyPrinter()
        .writeValueAsBytes(study.policy().get().toJson());
  }

  /**
   * Where the routing policy of {@code jobId}'s evaluation of {@code modelSha256} is kept, beside
   * its report: {@code s3://<bucket>/evaluations/<jobId>/<modelSha256>.routing_policy.json}; the
   * publish step publishes it with the model as {@link RoutingPolicy#FILE_NAME}.
   */
  public static S3Uri routingPolicyLocation(String bucket, String jobId, String modelSha256) {
    S3Uri report = EvaluationReport.location(bucket, jobId, modelSha256);
    return new S3Uri(
        report.bucket(), report.key().replaceFirst("\\.json$", "." + RoutingPolicy.FILE_NAME));
  }

  private static Double orNull(double v) {
    return Double.isNaN(v) ? null : v;
  }

  /**
   * What {@link SpeedSweep} (and {@link LatencyProbe}) ran on: the engine, its version and device,
   * and the weights' form.
   */
  static String latencyLabel(Device device) {
    Engine e = Engine.getInstance();
    return "engine djl-dequantized: DJL "
        + e.getEngineName()
        + " "
        + e.getVersion()
        + " on "
        + device
        + ", dequantized safetensors weights in fp32 (not the GGUF or compressed-tensors kernels)";
  }

  private static final Set<String> AVRO_FIELDS =
      Set.of(
          "perplexity",
          "baselinePerplexity",
          "bitsPerByte",
          "baselineBitsPerByte",
          "klDivergence",
          "top1Agreement",
          "sizeBytes",
          "baselineSizeBytes",
          "parameterCount",
          "baselineParameterCount",
          "sparsity",
          "prefillMsPerToken",
          "decodeTokensPerSecond",
          "evalTokensPerSecond",
          "peakRssBytes");

  static EvaluationMetrics toAvro(Map<String, Double> m) {
    return EvaluationMetrics.newBuilder()
        .setPerplexity(m.get("perplexity"))
        .setBaselinePerplexity(m.get("baselinePerplexity"))
        .setBitsPerByte(m.get("bitsPerByte"))
        .setBaselineBitsPerByte(m.get("baselineBitsPerByte"))
        .setKlDivergence(m.get("klDivergence"))
        .setTop1Agreement(m.get("top1Agreement"))
        .setSizeBytes(m.get("sizeBytes").longValue())
        .setBaselineSizeBytes(m.get("baselineSizeBytes").longValue())
        .setParameterCount(asLong(m.get("parameterCount")))
        .setBaselineParameterCount(asLong(m.get("baselineParameterCount")))
        .setSparsity(m.get("sparsity"))
        .setPrefillMsPerToken(m.get("prefillMsPerToken"))
        .setDecodeTokensPerSecond(m.get("decodeTokensPerSecond"))
        .setEvalTokensPerSecond(m.get("evalTokensPerSecond"))
        .setPeakRssBytes(asLong(m.get("peakRssBytes")))
        .build();
  }

  private static Map<String, Double> extra(Map<String, Double> m) {
    Map<String, Double> extra = new LinkedHashMap<>(m);
    extra.keySet().removeAll(AVRO_FIELDS);
    return extra;
  }

  private static Long asLong(Double d) {
    return d == null ? null : d.longValue();
  }

  private static String datasetName(String dataset) {
    return dataset == null || dataset.isBlank() ? Corpus.BUILTIN_EUROPARL : dataset;
  }

  private static ArtifactRef require(ArtifactRef ref, String what) {
    if (ref == null) {
      throw new IllegalArgumentException(
          "evaluate needs the request's " + what + " artifact, found none");
    }
    return ref;
  }
}
