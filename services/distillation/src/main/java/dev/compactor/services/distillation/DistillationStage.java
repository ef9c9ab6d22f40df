package dev.compactor.services.distillation;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
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
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.DistillParams;
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
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Distils the job's model into a shallower student: the student keeps the recipe's teacher layers
 * ({@code layers} or {@code keep_layers} evenly spaced) of the input model and is trained to match
 * the uncompressed baseline's next-token distribution on the calibration text. Checkpoints go to
 * the {@link CheckpointSink} the service provides (S3, per job and step), so a worker that takes
 * over a job resumes instead of starting over.
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
}
