package dev.compactor.services.distillation;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.device.ComputeDevice;
import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.core.distill.DistillationDepth;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.HiddenStateLoss;
import dev.compactor.core.distill.StudentBuilder;
import dev.compactor.core.distill.TeacherTopKCache;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.lora.LoraRecovery;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.DistillParams;
import dev.compactor.core.recipe.PruneParams;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.recipe.StepMemory;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Distils the job's model into a shallower student: the student keeps the recipe's teacher layers
 * ({@code layers} or {@code keep_layers} evenly spaced) of the input model and is trained to match
 * the uncompressed baseline's next-token distribution on the calibration text. Checkpoints go to
 * the {@link CheckpointSink} the service provides (S3, per job and step), so a worker that takes
 * over a job resumes instead of starting over.
 *
 * <p>With {@code distill: {lora: ...}} it runs LoRA recovery instead ({@link #recoverWithLora}):
 * the same runtime, checkpoints and resume, the teacher being the baseline too.
 */
public final class DistillationStage implements Stage {

  /** Makes the checkpoint store of one run. */
  @FunctionalInterface
  public interface Sinks {
    CheckpointSink forRun(StageContext ctx) throws IOException;
  }

  static final int DEFAULT_SAMPLES = StepMemory.DISTILL_DEFAULT_SAMPLES;
  static final int DEFAULT_SEQ_LEN = StepMemory.DISTILL_DEFAULT_SEQ_LEN;
  static final int MAX_BATCH = StepMemory.DISTILL_MAX_BATCH;
  private static final long SEED = 1234;

  /** Where a LoRA step's artifact holds its PEFT adapter (publish looks for it there). */
  public static final String ADAPTER_DIR = "adapter";

  private static final Logger LOG = LoggerFactory.getLogger(DistillationStage.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * DJL allows one open gradient collector per JVM, so two runs in one process (the demo, tests, or
   * a run this worker abandoned and its successor) take turns; deployed workers are one per
   * process.
   */
  private static final ReentrantLock TRAINING = new ReentrantLock();

  private final Sinks sinks;

  public DistillationStage(Sinks sinks) {
    this.sinks = sinks;
  }

  /** Checkpoints under {@code s3://<bucket>/checkpoints/distill/<jobId>/step-<step>/}. */
  public static DistillationStage withS3Checkpoints(BlobStore blobs, String bucket) {
    return new DistillationStage(
        ctx ->
            new S3CheckpointSink(
                blobs,
                new S3Uri(
                    bucket,
                    "checkpoints/distill/"
                        + ctx.jobId().replaceAll("[^A-Za-z0-9._-]", "_")
                        + "/step-"
                        + ctx.request().getStep()
                        + "/"),
                ctx.workDir(),
                ctx::checkCancelled));
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
    // the whole run, models included: a successor must not load while an abandoned run unwinds
    TRAINING.lockInterruptibly();
    try {
      return distill(ctx);
    } finally {
      TRAINING.unlock();
    }
  }

  /**
   * The recipe's hidden-state loss (student layers matched to the teacher layers they were built
   * from) or teacher top-k cache (in the work directory, bound to the teacher's weights).
   */
  static DistillationDepth depth(
      DistillParams.Depth d, StudentBuilder.Student s, Path workDir, Path teacherDir)
      throws IOException {
    DistillationDepth.Hidden hidden =
        d.hiddenLoss() == null
            ? null
            : new DistillationDepth.Hidden(
                HiddenStateLoss.Kind.parse(d.hiddenLoss()),
                (float) d.hiddenWeight(),
                s.keptLayers());
    DistillationDepth.TopK topK =
        d.teacherTopk() == 0
            ? null
            : new DistillationDepth.TopK(
                d.teacherTopk(),
                workDir.resolve("teacher-topk.bin"),
                TeacherTopKCache.teacherId(teacherDir));
    return new DistillationDepth(hidden, topK);
  }

  private StageResult distill(StageContext ctx) throws Exception {
    // PyTorch's grad mode is per thread and on by default; DJL switches it off only on the thread
    // that started the engine. The worker's job threads would otherwise run the optimizer's
    // in-place updates under autograd, which PyTorch refuses ("leaf Variable ... in-place").
    // The engine must be loaded first: in a fresh JVM nothing else has loaded the native library
    // yet, and the JNI call would fail with UnsatisfiedLinkError (torchSetGradMode).
    Engine.getEngine("PyTorch");
    JniUtils.setGradMode(false);
    StageSpec spec = StageSpec.fromJson(StageKind.DISTILL, ctx.request().getParamsJson());
    DistillParams p = (DistillParams) spec.params();
    RecipeModelCheck.requireMemory(spec, ModelConfig.read(ctx.inputDir()), ctx.memoryBudgetBytes());
    String requested = ctx.request().getCalibrationUri();
    Calibration cal =
        spec.calibration()
            .orElse(
                new Calibration(
                    requested == null ? Corpus.BUILTIN_EUROPARL : requested,
                    DEFAULT_SAMPLES,
                    DEFAULT_SEQ_LEN));
    Device device = ComputeDevice.resolve(ctx.device());
    if (p.lora() != null) {
      return recoverWithLora(ctx, p, cal, device);
    }
    Path teacherDir = ctx.request().getBaseline() != null ? ctx.baselineDir() : ctx.inputDir();
    Path init = ctx.workDir().resolve("student-init");
    StudentBuilder.Student s =
        p.layers().isEmpty()
            ? StudentBuilder.build(ctx.inputDir(), init, p.keepLayers())
            : StudentBuilder.buildWithLayers(
                ctx.inputDir(), init, p.layers().stream().mapToInt(Integer::intValue).toArray());
    ModelDirectory input = ModelDirectory.open(ctx.inputDir());
    DType storeAs = p.storeAs(input.dominantDType());
    DistillationReport report;
    long params;
    try (TextTokenizer tokenizer = Tokenizers.forModel(ctx.inputDir());
        Transformer teacher = Transformer.load(teacherDir, device);
        Transformer student = Transformer.load(init, device)) {
      // a recipe's calibration.clean drops duplicates and low-quality documents first
      Corpus corpus =
          cal.clean(Corpus.forDataset(cal.dataset(), ctx::fetch), ctx.inputDir()).corpus();
      int seq = Math.min(cal.seqLen(), student.maxSequenceLength() - 1);
      List<int[]> windows = corpus.calibrationSamples(tokenizer, cal.samples(), seq + 1, SEED);
      DistillationSpec ds =
          new DistillationSpec(
              (float) p.temperature(),
              (float) p.alpha(),
              p.steps(),
              Math.min(MAX_BATCH, windows.size()),
              (float) p.lr(),
              p.steps() / 20,
              0f,
              1f,
              p.checkpointEvery(),
              SEED);
      ctx.progress()
          .report(0.05, "distilling " + s.keptLayers().length + " of " + s.teacherLayers());
      report =
          new Distiller(ds, sinks.forRun(ctx), depth(p.depth(), s, ctx.workDir(), teacherDir))
              .distill(teacher, student, windows);
      ctx.checkCancelled();
      student.save(
          ctx.outputDir(),
          storeAs,
          Map.of("compactor.distill.kept_layers", Arrays.toString(s.keptLayers())));
      params = student.parameters().values().stream().mapToLong(a -> a.size()).sum();
    }
    input.copyAuxiliaryFilesTo(ctx.outputDir());
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("teacherLayers", (double) s.teacherLayers());
    metrics.put("studentLayers", (double) s.keptLayers().length);
    metrics.put("steps", (double) report.totalSteps());
    metrics.put("resumedFromStep", (double) report.resumedFromStep());
    metrics.put("startLoss", report.startLoss());
    metrics.put("endLoss", report.endLoss());
    metrics.put("trainedTokens", (double) report.tokens());
    metrics.put("checkpoints", (double) report.checkpoints());
    metrics.put("parameterCount", (double) params);
    metrics.put("sparsity", WeightSparsity.of(ctx.outputDir()).fraction());
    metrics.values().removeIf(v -> v.isNaN());
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * LoRA recovery ({@code distill: {lora: ...}}): a fresh adapter on the frozen input model is
   * distilled from the job's baseline on the calibration windows, checked on held-out windows of
   * the calibration text's validation split, and kept only when it lowered the KL to the baseline
   * ({@link LoraRecovery#runIfBetter}). Kept: the output is the input with the adapter merged (a
   * pruned input's zeros kept exactly: the delta is trained masked to its non-zeros) plus the PEFT
   * adapter in {@code adapter/}, which publish lists beside the model. Not kept: the input model
   * unchanged, no adapter, and {@code loraKept} 0.
   */
  private StageResult recoverWithLora(
      StageContext ctx, DistillParams p, Calibration cal, Device device) throws Exception {
    if (ctx.request().getBaseline() == null) {
      throw new IllegalArgumentException(
          "lora recovery trains against the job's baseline model, but the request names none");
    }
    Path teacherDir = ctx.baselineDir();
    DistillParams.Lora lora = p.lora();
    long start = System.nanoTime();
    List<int[]> train;
    List<int[]> heldOut;
    String heldOutSplit = "validation";
    int seq;
    try (TextTokenizer tokenizer = Tokenizers.forModel(ctx.inputDir())) {
      Corpus corpus = Corpus.forDataset(cal.dataset(), ctx::fetch);
      seq = Math.min(cal.seqLen(), ModelConfig.read(ctx.inputDir()).maxPositions() - 1);
      int heldOutWindows = PruneParams.Recovery.HELD_OUT_WINDOWS;
      if (tokenizer.encode(corpus.validationText()).length > seq + 1) {
        // the same training and held-out windows as prune recovery's check
        train = corpus.calibrationSamples(tokenizer, cal.samples(), seq + 1, SEED);
        heldOut = corpus.validationSamples(tokenizer, heldOutWindows, seq + 1, SEED + 2);
      } else {
        // a text with no validation part: hold back the last tenth of its training documents
        heldOutSplit = "last tenth of the training documents";
        List<String> docs = corpus.trainDocuments();
        int back = Math.max(1, docs.size() / 10);
        if (docs.size() < 2) {
          throw new IllegalArgumentException(
              "lora recovery needs held-out text: calibration "
                  + cal.dataset()
                  + " has no validation part and only "
                  + docs.size()
                  + " training document");
        }
        int[] head = tokenizer.encode(String.join("\n", docs.subList(0, docs.size() - back)));
        int[] tail =
            tokenizer.encode(String.join("\n", docs.subList(docs.size() - back, docs.size())));
        train = randomWindows(head, cal.samples(), seq + 1, SEED, cal.dataset());
        heldOut = consecutiveWindows(tail, heldOutWindows, seq + 1, cal.dataset());
      }
    }
    DistillationSpec ds =
        new DistillationSpec(
            (float) p.temperature(),
            (float) p.alpha(),
            p.steps(),
            Math.min(lora.batch(), train.size()),
            (float) p.lr(),
            p.steps() / 20,
            0f,
            1f,
            p.checkpointEvery(),
            SEED);
    ObjectNode provenance = JSON.createObjectNode();
    provenance.put("tool", "compactor distillation service");
    provenance.put("stage", "distill.lora");
    provenance.put("job_id", ctx.jobId());
    provenance.put("step", ctx.request().getStep());
    provenance.put("recipe", Recipe.parse(ctx.request().getRecipeYaml()).name());
    if (ctx.request().getInput() != null) {
      provenance.put("base_sha256", ctx.request().getInput().getSha256());
    }
    provenance.put("teacher_sha256", ctx.request().getBaseline().getSha256());
    provenance.set("settings", p.toJson());
    ObjectNode data = provenance.putObject("calibration");
    data.put("dataset", cal.dataset());
    data.put("train_windows", train.size());
    data.put("seq_len", seq);
    data.put("held_out_windows", heldOut.size());
    data.put("held_out_split", heldOutSplit);
    ctx.progress()
        .report(
            0.05,
            "LoRA r="
                + lora.rank()
                + ": "
                + p.steps()
                + " steps against the baseline, "
                + train.size()
                + " windows of "
                + seq
                + " tokens");
    Path out = ctx.workDir().resolve("lora-out");
    Distiller.Progress progress =
        (step, total, loss) ->
            ctx.progress()
                .report(
                    0.05 + 0.85 * step / Math.max(1, total),
                    String.format(Locale.ROOT, "LoRA step %d of %d, loss %.5f", step, total, loss));
    LoraRecovery.Result r =
        LoraRecovery.runIfBetter(
            teacherDir,
            ctx.inputDir(),
            out,
            lora.spec(),
            ds,
            lora.merge(),
            train,
            heldOut,
            sinks.forRun(ctx),
            progress,
            device,
            provenance);
    ctx.checkCancelled();
    if (r.kept()) {
      moveContents(out.resolve(LoraRecovery.MERGED_DIR), ctx.outputDir());
      Files.move(out.resolve(LoraRecovery.ADAPTER_DIR), ctx.outputDir().resolve(ADAPTER_DIR));
    } else {
      LOG.warn(
          "job {}: LoRA raised the held-out KL ({} -> {}); passing the input model on unchanged",
          ctx.jobId(),
          r.before().kl(),
          r.after().kl());
      copyContents(ctx.inputDir(), ctx.outputDir());
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("loraKept", r.kept() ? 1.0 : 0.0);
    metrics.put("loraHeldOutKlBefore", r.before().kl());
    metrics.put("loraHeldOutKlAfter", r.after().kl());
    metrics.put("loraHeldOutPerplexityBefore", r.before().perplexity());
    metrics.put("loraHeldOutPerplexityAfter", r.after().perplexity());
    metrics.put("loraRank", (double) lora.rank());
    metrics.put("loraAlpha", lora.alpha());
    metrics.put("loraTargets", (double) r.targets());
    metrics.put("loraMaskedDelta", r.masked() ? 1.0 : 0.0);
    metrics.put("adapterParameters", (double) r.adapterParameters());
    metrics.put("steps", (double) r.training().totalSteps());
    metrics.put("resumedFromStep", (double) r.training().resumedFromStep());
    metrics.put("startLoss", r.training().startLoss());
    metrics.put("endLoss", r.training().endLoss());
    metrics.put("trainedTokens", (double) r.training().tokens());
    metrics.put("checkpoints", (double) r.training().checkpoints());
    metrics.put("loraSeconds", (System.nanoTime() - start) / 1e9);
    metrics.put("sparsity", WeightSparsity.of(ctx.outputDir()).fraction());
    metrics.values().removeIf(v -> v.isNaN());
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /** {@code count} windows of {@code length} tokens at seeded random offsets of {@code tokens}. */
  static List<int[]> randomWindows(int[] tokens, int count, int length, long seed, String what) {
    if (tokens.length <= length) {
      throw new IllegalArgumentException(
          "lora recovery needs more than "
              + length
              + " training tokens, "
              + what
              + " has "
              + tokens.length);
    }
    SplittableRandom random = new SplittableRandom(seed);
    List<int[]> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      int start = random.nextInt(tokens.length - length + 1);
      out.add(Arrays.copyOfRange(tokens, start, start + length));
    }
    return out;
  }

  /** Up to {@code count} non-overlapping windows of {@code length} tokens from the start. */
  static List<int[]> consecutiveWindows(int[] tokens, int count, int length, String what) {
    List<int[]> out = new ArrayList<>();
    for (int s = 0; s + length <= tokens.length && out.size() < count; s += length) {
      out.add(Arrays.copyOfRange(tokens, s, s + length));
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          "lora recovery needs at least "
              + length
              + " held-out tokens, "
              + what
              + " has "
              + tokens.length);
    }
    return out;
  }

  private static void moveContents(Path from, Path to) throws IOException {
    Files.createDirectories(to);
    try (Stream<Path> s = Files.list(from)) {
      for (Path f : (Iterable<Path>) s::iterator) {
        Files.move(f, to.resolve(f.getFileName().toString()));
      }
    }
  }

  /** The model files of {@code from} (top level: an adapter directory is not carried on). */
  private static void copyContents(Path from, Path to) throws IOException {
    Files.createDirectories(to);
    try (Stream<Path> s = Files.list(from)) {
      for (Path f : (Iterable<Path>) s::iterator) {
        if (Files.isRegularFile(f)) {
          Files.copy(f, to.resolve(f.getFileName().toString()));
        }
      }
    }
  }
}
