package dev.compactor.core.distill;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.train.Autograd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Trains a student to imitate a teacher on the calibration text: each step feeds a batch of token
 * windows to both, computes {@link DistillationLoss} on the student's logits against the teacher's
 * (computed outside the gradient tape, so the teacher is never differentiated) and the true next
 * tokens, and takes an AdamW step on a warm-up + cosine learning-rate schedule.
 *
 * <p>A {@link DistillationDepth} adds a {@link HiddenStateLoss} on the per-layer residual streams
 * (its projections trained and checkpointed with the student), or replaces the teacher pass by the
 * teacher's top-k log-probabilities read from a {@link TeacherTopKCache} computed once; target
 * masks (task data) restrict every term to the completion tokens.
 *
 * <p>Every {@code checkpointEvery} steps the student's weights, the optimizer's moments and the
 * step are handed to a {@link CheckpointSink}. A run started with a sink that already holds a
 * checkpoint continues from it: the data order is a pure function of seed and step ({@link
 * TrainingOrder}), so the resumed run sees exactly the batches the uninterrupted one would have.
 */
public final class Distiller {

  private static final Logger LOG = LoggerFactory.getLogger(Distiller.class);
  private static final int CURVE_POINTS = 50;
  private static final int LOSS_WINDOW = 5;

  /**
   * A teacher up to this size in fp32 is loaded whole; a larger one is streamed layer by layer
   * every step (constant memory, but a full weight read and conversion per step).
   */
  static final long RESIDENT_TEACHER_BYTES = 4L << 30;

  private final DistillationSpec spec;
  private final CheckpointSink sink;
  private final DistillationDepth depth;
  private final Progress progress;

  /** Told after every step: for a command line's progress. */
  public interface Progress {
    void step(long step, long totalSteps, double loss);
  }

  /**
   * Held-out quality of a student against its teacher at temperature 1, over the positions that
   * count: mean KL(teacher || student) per token, the student's next-token cross-entropy and its
   * exponential (perplexity).
   */
  public record HeldOut(double kl, double crossEntropy, long positions) {
    public double perplexity() {
      return Math.exp(crossEntropy);
    }
  }

  public Distiller(DistillationSpec spec, CheckpointSink sink) {
    this(spec, sink, DistillationDepth.NONE);
  }

  /** A distiller adding {@code depth}'s hidden-state loss or cached teacher top-k to logit KD. */
  public Distiller(DistillationSpec spec, CheckpointSink sink, DistillationDepth depth) {
    this(spec, sink, depth, null);
  }

  /**
   * As {@link #Distiller(DistillationSpec, CheckpointSink, DistillationDepth)}, telling progress.
   */
  public Distiller(
      DistillationSpec spec, CheckpointSink sink, DistillationDepth depth, Progress progress) {
    this.spec = spec;
    this.sink = sink;
    this.depth = depth;
    this.progress = progress;
  }

  /**
   * The whole stage: builds a student keeping {@code keepLayers} of the teacher's layers (evenly
   * spaced) in {@code workDir}, distills it against the teacher (loaded whole up to 4 GiB of fp32
   * weights, streamed layer by layer beyond), and saves it as a Hugging Face directory in {@code
   * outputDir} stored as {@code storeAs}, with the teacher's tokenizer files. A restarted worker
   * calling this again with the same sink resumes from the latest checkpoint.
   */
  public DistillationReport distillDirectory(
      Path teacherDir,
      Path workDir,
      Path outputDir,
      int keepLayers,
      List<int[]> windows,
      DType storeAs,
      Device device)
      throws IOException {
    Path studentDir = workDir.resolve("student-init");
    if (Files.exists(studentDir)) {
      DistillationCheckpoint.deleteTree(studentDir);
    }
    StudentBuilder.Student built = StudentBuilder.build(teacherDir, studentDir, keepLayers);
    DistillationReport report;
    ModelDirectory teacherFiles = ModelDirectory.open(teacherDir);
    boolean resident = teacherFiles.parameterCount() * Float.BYTES <= RESIDENT_TEACHER_BYTES;
    try (CausalLM teacher =
            resident
                ? Transformer.load(teacherDir, device)
                : StreamingTransformer.open(teacherDir, device);
        Transformer student = Transformer.load(studentDir, device)) {
      report = forDirectory(teacherDir, workDir, built).distill(teacher, student, windows);
      Map<String, String> metadata = new LinkedHashMap<>();
      metadata.put("compactor.distill.teacher_layers", Arrays.toString(built.keptLayers()));
      metadata.put("compactor.distill.steps", Long.toString(report.totalSteps()));
      metadata.put("compactor.distill.temperature", Float.toString(spec.temperature()));
      metadata.put("compactor.distill.alpha", Float.toString(spec.alpha()));
      student.save(outputDir, storeAs, metadata);
    }
    teacherFiles.copyAuxiliaryFilesTo(outputDir);
    DistillationCheckpoint.deleteTree(studentDir);
    return report;
  }

  /**
   * This distiller with the defaults of a directory run filled in: hidden states matched to the
   * teacher layers the student was built from, the top-k cache in the work directory, bound to the
   * teacher directory's weights.
   */
  private Distiller forDirectory(Path teacherDir, Path workDir, StudentBuilder.Student built)
      throws IOException {
    DistillationDepth.Hidden hidden = depth.hidden();
    if (hidden != null && hidden.teacherLayers() == null) {
      hidden = hidden.withTeacherLayers(built.keptLayers());
    }
    DistillationDepth.TopK topK = depth.topK();
    if (topK != null) {
      topK =
          new DistillationDepth.TopK(
              topK.k(),
              topK.file() == null ? workDir.resolve("teacher-topk.bin") : topK.file(),
              topK.teacherId() == null ? TeacherTopKCache.teacherId(teacherDir) : topK.teacherId());
    }
    return new Distiller(spec, sink, new DistillationDepth(hidden, topK), progress);
  }

  /**
   * Trains {@code student} in place. Each window holds {@code seq + 1} token ids: the model reads
   * the first {@code seq}, and the last {@code seq} are the next-token targets.
   */
  public DistillationReport distill(CausalLM teacher, Transformer student, List<int[]> windows)
      throws IOException {
    return distill(teacher, Trainable.of(student), windows);
  }

  /**
   * Trains {@code trainable}'s parameters in place, on windows like {@link #distill(CausalLM,
   * Transformer, List)}'s.
   */
  public DistillationReport distill(CausalLM teacher, Trainable trainable, List<int[]> windows)
      throws IOException {
    return distill(teacher, trainable, windows, null);
  }

  /**
   * As {@link #distill(CausalLM, Trainable, List)}, with the loss counted only where {@code
   * targetMasks} (one per window, {@code seq} entries for the {@code seq} next-token targets; null:
   * every position) is true: task distillation trains on completion tokens only.
   */
  public DistillationReport distill(
      CausalLM teacher, Trainable trainable, List<int[]> windows, List<boolean[]> targetMasks)
      throws IOException {
    Transformer student = trainable.model();
    int seq = checkWindows(windows, student);
    checkMasks(targetMasks, windows.size(), seq);
    if (teacher.vocabSize() != student.vocabSize()) {
      throw new IllegalArgumentException(
          "teacher and student must share a vocabulary: "
              + teacher.vocabSize()
              + " vs "
              + student.vocabSize());
    }
    long started = System.nanoTime();
    try (NDManager constants = NDManager.newBaseManager(student.device());
        DistillationLoss loss = new DistillationLoss(constants, spec.temperature(), spec.alpha());
        HiddenStateLoss hidden = hiddenLoss(constants, teacher, student, windows.get(0));
        TeacherTopKCache cache = topKCache(teacher, windows, student.device())) {
      Map<String, NDArray> params = new LinkedHashMap<>(trainable.parameters());
      if (hidden != null) {
        params.putAll(hidden.projections());
        LOG.info(
            "hidden-state loss: student layers {} -> teacher layers {}, {} projections",
            Arrays.toString(hidden.studentLayers()),
            Arrays.toString(hidden.teacherLayers()),
            hidden.projections().size());
      }
      Step ctx = new Step(teacher, trainable, windows, targetMasks, seq, loss, hidden, cache);
      return train(ctx, params, started, seq);
    }
  }

  private DistillationReport train(Step ctx, Map<String, NDArray> params, long started, int seq)
      throws IOException {
    List<int[]> windows = ctx.windows;
    TrainingOrder order = new TrainingOrder(windows.size(), spec.batchSize(), spec.seed());
    try (NDManager constants = NDManager.newBaseManager(ctx.student.model().device());
        StudentOptimizer optimizer =
            new StudentOptimizer(params, spec, constants, ctx.student.keepZeros())) {
      if (!optimizer.maskedParameters().isEmpty()) {
        LOG.info(
            "keeping the zeros of {} pruned decoder linear weights at zero",
            optimizer.maskedParameters().size());
      }
      long first = 0;
      Optional<CheckpointSink.Checkpoint> latest = sink.latest();
      if (latest.isPresent()) {
        first =
            DistillationCheckpoint.restore(latest.get(), spec, windows.size(), params, optimizer);
        optimizer.applyMasks();
        LOG.info("resuming distillation at step {} from {}", first, latest.get().directory());
      }
      List<Double> losses = new ArrayList<>();
      List<DistillationReport.LossPoint> curve = new ArrayList<>();
      int sampleEvery = Math.max(1, (int) ((spec.steps() - first) / CURVE_POINTS));
      int checkpoints = 0;
      for (long step = first; step < spec.steps(); step++) {
        double value = trainStep(ctx, order.batch(step), optimizer, step);
        losses.add(value);
        if (progress != null) {
          progress.step(step + 1, spec.steps(), value);
        }
        if ((step - first) % sampleEvery == 0 || step == spec.steps() - 1) {
          curve.add(new DistillationReport.LossPoint(step + 1, value));
        }
        boolean last = step == spec.steps() - 1;
        if (last || (spec.checkpointEvery() > 0 && (step + 1) % spec.checkpointEvery() == 0)) {
          Path dir = Files.createTempDirectory("compactor-distill-ckpt-");
          try {
            DistillationCheckpoint.write(dir, step + 1, spec, windows.size(), params, optimizer);
            sink.save(step + 1, dir);
            checkpoints++;
          } finally {
            DistillationCheckpoint.deleteTree(dir);
          }
        }
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      long trained = spec.steps() - first;
      LOG.info(
          "distilled {} steps ({} -> {}) in {} s, loss {} -> {}",
          trained,
          first,
          spec.steps(),
          String.format("%.1f", seconds),
          mean(losses, true),
          mean(losses, false));
      return new DistillationReport(
          spec.steps(),
          first,
          mean(losses, true),
          mean(losses, false),
          curve,
          trained * spec.batchSize() * seq,
          seconds,
          checkpoints);
    }
  }

  /**
   * The decoder linear weights that hold exact zeros: a student initialised from a pruned model
   * must come out with the same zeros, or distillation undoes the pruning.
   */
  static Set<String> prunedWeights(Map<String, NDArray> params) {
    Set<String> out = new LinkedHashSet<>();
    for (Map.Entry<String, NDArray> e : params.entrySet()) {
      if (!LayerwiseQuantizer.isDecoderLinear(e.getKey())) {
        continue;
      }
      try (NDArray zero = e.getValue().getManager().zeros(new Shape());
          NDArray isZero = e.getValue().eq(zero);
          NDArray any = isZero.any()) {
        if (any.getBoolean()) {
          out.add(e.getKey());
        }
      }
    }
    return out;
  }

  /** What every step of one run reads. */
  private record Step(
      CausalLM teacher,
      Trainable student,
      List<int[]> windows,
      List<boolean[]> masks,
      int seq,
      DistillationLoss loss,
      HiddenStateLoss hidden,
      TeacherTopKCache cache) {}

  private HiddenStateLoss hiddenLoss(
      NDManager constants, CausalLM teacher, Transformer student, int[] window) {
    DistillationDepth.Hidden h = depth.hidden();
    if (h == null) {
      return null;
    }
    // One token through the teacher tells its depth and width, whichever CausalLM it is.
    List<NDArray> probe = new ArrayList<>();
    long teacherWidth;
    try (NDManager m = NDManager.newBaseManager(student.device())) {
      teacher.logitsWithHidden(m, m.create(new int[] {window[0]}, new Shape(1, 1)), probe);
      teacherWidth = probe.get(0).getShape().get(2);
    }
    int teacherLayers = probe.size();
    int studentLayers = student.config().numLayers();
    int[] map =
        h.teacherLayers() == null
            ? HiddenStateLoss.evenlySpaced(studentLayers, teacherLayers)
            : h.teacherLayers();
    if (map.length != studentLayers) {
      throw new IllegalArgumentException(
          "hidden-state layer map "
              + Arrays.toString(map)
              + " must name one teacher layer for each of the student's "
              + studentLayers
              + " layers");
    }
    for (int t : map) {
      if (t < 0 || t >= teacherLayers) {
        throw new IllegalArgumentException(
            "hidden-state layer map names teacher layer "
                + t
                + ", the teacher has "
                + teacherLayers);
      }
    }
    int[] students = new int[studentLayers];
    for (int j = 0; j < studentLayers; j++) {
      students[j] = j;
    }
    return new HiddenStateLoss(
        constants,
        h.kind(),
        h.weight(),
        students,
        map,
        student.config().hiddenSize(),
        teacherWidth,
        spec.seed());
  }

  private TeacherTopKCache topKCache(CausalLM teacher, List<int[]> windows, Device device)
      throws IOException {
    DistillationDepth.TopK t = depth.topK();
    if (t == null) {
      return null;
    }
    if (t.file() == null || t.teacherId() == null) {
      throw new IllegalArgumentException(
          "a cached teacher top-k needs a file and a teacher identity to bind it to");
    }
    return TeacherTopKCache.openOrBuild(
        t.file(), teacher, t.teacherId(), windows, t.k(), spec.batchSize(), device);
  }

  private static double trainStep(Step ctx, int[] batch, StudentOptimizer optimizer, long step)
      throws IOException {
    int seq = ctx.seq;
    int[] inputs = new int[batch.length * seq];
    int[] targets = new int[batch.length * seq];
    float[] keep = ctx.masks == null ? null : new float[batch.length * seq];
    for (int b = 0; b < batch.length; b++) {
      int[] w = ctx.windows.get(batch[b]);
      System.arraycopy(w, 0, inputs, b * seq, seq);
      System.arraycopy(w, 1, targets, b * seq, seq);
      if (keep != null) {
        boolean[] mk = ctx.masks.get(batch[b]);
        for (int t = 0; t < seq; t++) {
          keep[b * seq + t] = mk[t] ? 1f : 0f;
        }
      }
    }
    try (NDManager m = NDManager.newBaseManager(ctx.student.model().device())) {
      NDArray in = m.create(inputs, new Shape(batch.length, seq));
      NDArray y = m.create(targets, new Shape(batch.length, seq));
      NDArray mask = keep == null ? null : m.create(keep, new Shape(batch.length, seq));
      NDArray teacherLogits = null;
      NDList top = null;
      List<NDArray> teacherHidden = new ArrayList<>();
      if (ctx.cache != null) {
        top = ctx.cache.read(m, batch);
      } else if (ctx.hidden != null) {
        teacherLogits = ctx.teacher.logitsWithHidden(m, in, teacherHidden);
      } else {
        teacherLogits = ctx.teacher.logits(m, in);
      }
      float value;
      try (GradientCollector tape = Autograd.collector()) {
        List<NDArray> studentHidden = new ArrayList<>();
        NDArray studentLogits =
            ctx.hidden == null
                ? ctx.student.forward(m, in)
                : ctx.student.forward(m, in, studentHidden);
        NDArray l =
            top != null
                ? ctx.loss.topKTerms(studentLogits, top.get(0), top.get(1), y, mask).loss()
                : ctx.loss.terms(studentLogits, teacherLogits, y, mask).loss();
        if (ctx.hidden != null) {
          l = l.add(ctx.hidden.compute(studentHidden, teacherHidden, mask));
        }
        tape.backward(l);
        value = l.getFloat();
      }
      if (!Float.isFinite(value)) {
        throw new IllegalStateException(
            "distillation loss became " + value + " at step " + step + ": lower the learning rate");
      }
      optimizer.step(step);
      return value;
    }
  }

  private static void checkMasks(List<boolean[]> masks, int windows, int seq) {
    if (masks == null) {
      return;
    }
    if (masks.size() != windows) {
      throw new IllegalArgumentException(
          "expected one target mask per window (" + windows + "), found " + masks.size());
    }
    for (int i = 0; i < masks.size(); i++) {
      if (masks.get(i).length != seq) {
        throw new IllegalArgumentException(
            "target mask " + i + " has " + masks.get(i).length + " entries, expected " + seq);
      }
    }
  }

  /**
   * Mean per-token KL(teacher || student) at temperature 1 over {@code windows} (the first {@code
   * seq} tokens of each are read): how far the student's next-token distribution is from the
   * teacher's.
   */
  public static double meanKl(
      CausalLM teacher, CausalLM student, List<int[]> windows, int batchSize) {
    double sum = 0;
    long positions = 0;
    int seq = windows.get(0).length - 1;
    try (NDManager m = NDManager.newBaseManager();
        DistillationLoss kl = new DistillationLoss(m, 1f, 1f)) {
      for (int start = 0; start < windows.size(); start += batchSize) {
        int n = Math.min(batchSize, windows.size() - start);
        int[] inputs = new int[n * seq];
        for (int b = 0; b < n; b++) {
          System.arraycopy(windows.get(start + b), 0, inputs, b * seq, seq);
        }
        try (NDManager batch = m.newSubManager()) {
          NDArray in = batch.create(inputs, new Shape(n, seq));
          NDArray t = teacher.logits(batch, in);
          NDArray s = student.logits(batch, in);
          double value = kl.terms(s, t, batch.zeros(new Shape(n, seq))).kl().getFloat();
          sum += value * n * seq;
          positions += (long) n * seq;
        }
      }
    }
    return sum / positions;
  }

  /**
   * {@link HeldOut} of {@code student} against {@code teacher} on {@code windows} (each {@code seq
   * + 1} ids), counting only the targets {@code masks} keeps (null: all).
   */
  public static HeldOut heldOut(
      CausalLM teacher, CausalLM student, List<int[]> windows, List<boolean[]> masks, int batch) {
    int seq = windows.get(0).length - 1;
    double kl = 0;
    double ce = 0;
    long positions = 0;
    try (NDManager m = NDManager.newBaseManager();
        DistillationLoss loss = new DistillationLoss(m, 1f, 1f)) {
      for (int start = 0; start < windows.size(); start += batch) {
        int n = Math.min(batch, windows.size() - start);
        int[] inputs = new int[n * seq];
        int[] targets = new int[n * seq];
        float[] keep = new float[n * seq];
        long kept = 0;
        for (int b = 0; b < n; b++) {
          int[] w = windows.get(start + b);
          System.arraycopy(w, 0, inputs, b * seq, seq);
          System.arraycopy(w, 1, targets, b * seq, seq);
          for (int t = 0; t < seq; t++) {
            boolean k = masks == null || masks.get(start + b)[t];
            keep[b * seq + t] = k ? 1f : 0f;
            kept += k ? 1 : 0;
          }
        }
        if (kept == 0) {
          continue;
        }
        try (NDManager sub = m.newSubManager()) {
          NDArray in = sub.create(inputs, new Shape(n, seq));
          DistillationLoss.Terms terms =
              loss.terms(
                  student.logits(sub, in),
                  teacher.logits(sub, in),
                  sub.create(targets, new Shape(n, seq)),
                  sub.create(keep, new Shape(n, seq)));
          kl += terms.kl().getFloat() * kept;
          ce += terms.crossEntropy().getFloat() * kept;
          positions += kept;
        }
      }
    }
    return new HeldOut(kl / positions, ce / positions, positions);
  }

  private static int checkWindows(List<int[]> windows, Transformer student) {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("distillation needs calibration text, found no windows");
    }
    int len = windows.get(0).length;
    if (len < 2) {
      throw new IllegalArgumentException("a window needs at least 2 tokens, found " + len);
    }
    if (len - 1 > student.maxSequenceLength()) {
      throw new IllegalArgumentException(
          "windows of "
              + (len - 1)
              + " input tokens exceed the student's context of "
              + student.maxSequenceLength());
    }
    for (int i = 0; i < windows.size(); i++) {
      int[] w = windows.get(i);
      if (w.length != len) {
        throw new IllegalArgumentException(
            "windows must share one length: window 0 has "
                + len
                + ", window "
                + i
                + " has "
                + w.length);
      }
      for (int t : w) {
        if (t < 0 || t >= student.vocabSize()) {
          throw new IllegalArgumentException(
              "window "
                  + i
                  + " holds token id "
                  + t
                  + " outside the vocabulary of "
                  + student.vocabSize());
        }
      }
    }
    return len - 1;
  }

  private static double mean(List<Double> values, boolean head) {
    if (values.isEmpty()) {
      return Double.NaN;
    }
    int n = Math.min(LOSS_WINDOW, values.size());
    List<Double> part =
        head ? values.subList(0, n) : values.subList(values.size() - n, values.size());
    return part.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
  }
}
