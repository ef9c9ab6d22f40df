package dev.compactor.cli.distill;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.DistillationDepth;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.HiddenStateLoss;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.distill.StudentBuilder;
import dev.compactor.core.distill.TaskData;
import dev.compactor.core.distill.Trainable;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ChatTemplate;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code compactor distill}: trains a student (the teacher's {@code --keep-layers N} evenly spaced
 * layers, or a {@code --student DIR}) to imitate the teacher by logit KD ({@link Distiller}, the
 * code the distillation service runs), optionally with a hidden-state loss, a cached teacher top-k,
 * or on task data ({@code --data FILE.jsonl}, loss on completion tokens only). Reports the held-out
 * KL to the teacher and the perplexity before and after, writes the student with the teacher's
 * tokenizer files and a {@code compactor.json} provenance file.
 */
public final class DistillCommand implements Command {

  static final long SEED = 1234;
  static final String PROVENANCE_FILE = "compactor.json";
  static final long RESIDENT_TEACHER_BYTES = 4L << 30;

  private static final Set<String> VALUES =
      Set.of(
          "teacher",
          "keep-layers",
          "student",
          "steps",
          "lr",
          "batch",
          "temperature",
          "alpha",
          "calibration",
          "eval-data",
          "samples",
          "seq-len",
          "eval-windows",
          "hidden-loss",
          "hidden-weight",
          "teacher-topk",
          "data",
          "out",
          "work");

  @Override
  public String name() {
    return "distill";
  }

  @Override
  public String summary() {
    return "distill a teacher into a smaller student (logit KD, optional hidden-state loss,"
        + " cached teacher top-k, task data from JSONL)";
  }

  @Override
  public String usage() {
    return "--teacher DIR (--keep-layers N | --student DIR) [--steps N] [--lr X] [--batch N]"
        + " [--temperature T] [--alpha A] [--calibration FILE] [--samples N] [--seq-len N]"
        + " [--eval-windows N] [--hidden-loss mse|cosine] [--hidden-weight B] [--teacher-topk K]"
        + " [--data FILE.jsonl] [--eval-data FILE.jsonl] [--work DIR] --out DIR [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args a = Args.parse(argv, VALUES, Set.of("json"));
    Path teacherDir = a.requiredPath("teacher");
    requireModel(teacherDir, "--teacher");
    if (a.present("keep-layers") == a.present("student")) {
      throw new UsageException("give exactly one of --keep-layers N and --student DIR");
    }
    Path outDir = a.requiredPath("out");
    if (Files.exists(outDir)) {
      try (Stream<Path> entries = Files.list(outDir)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + outDir + " must be absent or empty");
        }
      }
    }
    int steps = a.integer("steps", 200);
    int batch = a.integer("batch", 4);
    DistillationSpec spec;
    try {
      spec =
          new DistillationSpec(
              (float) a.number("temperature", 2.0),
              (float) a.number("alpha", 0.5),
              steps,
              batch,
              (float) a.number("lr", 1e-4),
              steps / 20,
              0f,
              1f,
              0,
              SEED);
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    DistillationDepth depth = depth(a);
    Path data = a.present("data") ? Path.of(a.required("data")) : null;
    if (data != null && !Files.isRegularFile(data)) {
      throw new UsageException("--data: expected a JSONL file, found none at " + data);
    }
    if (data != null && a.present("calibration")) {
      throw new UsageException("give --data or --calibration, not both");
    }
    Path calibration = a.present("calibration") ? Path.of(a.required("calibration")) : null;
    if (calibration != null && !Files.isRegularFile(calibration)) {
      throw new UsageException("--calibration: expected a text file, found none at " + calibration);
    }
    int keep = a.integer("keep-layers", 0);
    Path studentDir = a.present("student") ? Path.of(a.required("student")) : null;
    if (studentDir != null) {
      requireModel(studentDir, "--student");
    } else if (keep < 1) {
      throw new UsageException("--keep-layers must be at least 1, found " + keep);
    }

    long start = System.nanoTime();
    boolean tempWork = !a.present("work");
    Path work =
        tempWork ? Files.createTempDirectory("compactor-distill-") : Path.of(a.required("work"));
    Files.createDirectories(work);
    try {
      // data: training windows (+ masks) and held-out windows (+ masks)
      Data d = data(a, teacherDir, data, calibration, err);
      if (a.present("eval-data")) {
        d = withEvalData(d, Path.of(a.required("eval-data")), teacherDir);
      }
      err.printf(
          "data: %d training and %d held-out windows of %d tokens from %s (%.1f s)%n",
          d.train.size(), d.eval.size(), d.train.get(0).length - 1, d.source, seconds(start));

      int[] kept = null;
      Path init = studentDir;
      if (studentDir == null) {
        init = work.resolve("student-init");
        if (Files.exists(init)) {
          TableText.deleteRecursively(init);
        }
        kept = StudentBuilder.build(teacherDir, init, keep).keptLayers();
        err.printf("student: teacher layers %s%n", Arrays.toString(kept));
        if (depth.hidden() != null && depth.hidden().teacherLayers() == null) {
          depth = new DistillationDepth(depth.hidden().withTeacherLayers(kept), null);
        }
      }
      if (depth.topK() != null) {
        depth =
            new DistillationDepth(
                null,
                new DistillationDepth.TopK(
                    depth.topK().k(),
                    work.resolve("teacher-topk.bin"),
                    dev.compactor.core.distill.TeacherTopKCache.teacherId(teacherDir)));
      }
      ObjectNode summary = new ObjectMapper().createObjectNode();
      // like Distiller.distillDirectory: a teacher over 4 GiB of fp32 weights is streamed per pass
      boolean resident =
          ModelDirectory.open(teacherDir).parameterCount() * Float.BYTES <= RESIDENT_TEACHER_BYTES;
      try (CausalLM teacher =
              resident
                  ? Transformer.load(teacherDir, Device.cpu())
                  : StreamingTransformer.open(teacherDir, Device.cpu());
          Transformer student = Transformer.load(init, Device.cpu())) {
        int evalBatch = Math.max(1, batch);
        Distiller.HeldOut before =
            Distiller.heldOut(teacher, student, d.eval, d.evalMasks, evalBatch);
        err.printf(
            "before: held-out KL %.4f, ppl %.3f (teacher ppl %.3f)%n",
            before.kl(),
            before.perplexity(),
            Distiller.heldOut(teacher, teacher, d.eval, d.evalMasks, evalBatch).perplexity());
        long every = Math.max(1, steps / 20);
        Distiller.Progress progress =
            (step, total, loss) -> {
              if (step % every == 0 || step == total) {
                err.printf("step %d/%d: loss %.4f (%.1f s)%n", step, total, loss, seconds(start));
              }
            };
        DistillationReport report =
            new Distiller(
                    spec, new LocalCheckpointSink(work.resolve("checkpoints"), 1), depth, progress)
                .distill(teacher, Trainable.of(student), d.train, d.trainMasks);
        Distiller.HeldOut after =
            Distiller.heldOut(teacher, student, d.eval, d.evalMasks, evalBatch);
        double teacherPpl =
            Distiller.heldOut(teacher, teacher, d.eval, d.evalMasks, evalBatch).perplexity();
        err.printf("after: held-out KL %.4f, ppl %.3f%n", after.kl(), after.perplexity());

        Map<String, String> metadata = new LinkedHashMap<>();
        if (kept != null) {
          metadata.put("compactor.distill.teacher_layers", Arrays.toString(kept));
        }
        metadata.put("compactor.distill.steps", Long.toString(report.totalSteps()));
        metadata.put("compactor.distill.temperature", Float.toString(spec.temperature()));
        metadata.put("compactor.distill.alpha", Float.toString(spec.alpha()));
        DType input = ModelDirectory.open(teacherDir).dominantDType();
        DType storeAs = input == DType.F16 || input == DType.BF16 ? input : DType.F32;
        student.save(outDir, storeAs, metadata);
        ModelDirectory.copyAuxiliaryFiles(teacherDir, outDir);

        summary.put("out", outDir.toAbsolutePath().toString());
        summary.put("teacher", teacherDir.toAbsolutePath().toString());
        if (kept != null) {
          ArrayNode k = summary.putArray("teacher_layers");
          Arrays.stream(kept).forEach(k::add);
        } else {
          summary.put("student", studentDir.toAbsolutePath().toString());
        }
        summary.put("steps", report.totalSteps());
        summary.put("resumed_from_step", report.resumedFromStep());
        summary.put("batch", batch);
        summary.put("lr", spec.learningRate());
        summary.put("temperature", spec.temperature());
        summary.put("alpha", spec.alpha());
        if (depth.hidden() != null) {
          ObjectNode h = summary.putObject("hidden_loss");
          h.put("kind", depth.hidden().kind().name().toLowerCase(java.util.Locale.ROOT));
          h.put("weight", depth.hidden().weight());
          ArrayNode map = h.putArray("teacher_layers");
          if (depth.hidden().teacherLayers() != null) {
            Arrays.stream(depth.hidden().teacherLayers()).forEach(map::add);
          }
        }
        if (depth.topK() != null) {
          summary.put("teacher_topk", depth.topK().k());
        }
        ObjectNode dataNode = summary.putObject("data");
        dataNode.put("source", d.source);
        dataNode.put("sha256", d.sha256);
        dataNode.put("train_windows", d.train.size());
        dataNode.put("eval_windows", d.eval.size());
        if (a.present("eval-data")) {
          dataNode.put("eval_source", a.required("eval-data"));
        }
        dataNode.put("seq_len", d.train.get(0).length - 1);
        dataNode.put("completion_only", d.trainMasks != null);
        summary.put("store_as", storeAs.name());
        summary.put("start_loss", report.startLoss());
        summary.put("end_loss", report.endLoss());
        summary.put("tokens", report.tokens());
        ObjectNode held = summary.putObject("held_out");
        held.put("positions", after.positions());
        held.put("kl_before", before.kl());
        held.put("kl_after", after.kl());
        held.put("ppl_before", before.perplexity());
        held.put("ppl_after", after.perplexity());
        held.put("teacher_ppl", teacherPpl);
      }
      ObjectMapper json = new ObjectMapper();
      ObjectNode provenance = json.createObjectNode();
      provenance.put("tool", "compactor distill");
      ArrayNode cmd = provenance.putArray("command_line");
      cmd.add("distill");
      for (String s : argv) {
        cmd.add(s);
      }
      provenance.put("created", Instant.now().toString());
      provenance.put("input_dir", teacherDir.toAbsolutePath().toString());
      provenance.put("stage", "distill");
      provenance.set("distill", summary.deepCopy());
      Files.writeString(
          outDir.resolve(PROVENANCE_FILE),
          json.writerWithDefaultPrettyPrinter().writeValueAsString(provenance));
      ArrayNode files = summary.putArray("files");
      try (Stream<Path> walk = Files.walk(outDir)) {
        for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
          if (Files.isRegularFile(p)) {
            files
                .addObject()
                .put("path", outDir.relativize(p).toString())
                .put("bytes", Files.size(p));
          }
        }
      }
      summary.put("seconds", seconds(start));
      if (a.has("json")) {
        out.println(json.writeValueAsString(summary));
      } else {
        ObjectNode h = (ObjectNode) summary.get("held_out");
        out.printf(
            "wrote %s: %d steps, held-out KL %.4f -> %.4f, ppl %.3f -> %.3f (teacher %.3f)%n",
            outDir,
            summary.get("steps").asLong(),
            h.get("kl_before").asDouble(),
            h.get("kl_after").asDouble(),
            h.get("ppl_before").asDouble(),
            h.get("ppl_after").asDouble(),
            h.get("teacher_ppl").asDouble());
      }
      return 0;
    } finally {
      if (tempWork) {
        TableText.deleteRecursively(work);
      }
    }
  }

  private static DistillationDepth depth(Args a) throws UsageException {
    DistillationDepth.Hidden hidden = null;
    if (a.present("hidden-loss") || a.present("hidden-weight")) {
      try {
        hidden =
            new DistillationDepth.Hidden(
                HiddenStateLoss.Kind.parse(a.string("hidden-loss", "mse")),
                (float) a.number("hidden-weight", 1.0),
                null);
      } catch (IllegalArgumentException e) {
        throw new UsageException("--hidden-loss/--hidden-weight: " + e.getMessage());
      }
    }
    DistillationDepth.TopK topK = null;
    if (a.present("teacher-topk")) {
      int k = a.integer("teacher-topk", 0);
      if (k < 1) {
        throw new UsageException("--teacher-topk must be at least 1, found " + k);
      }
      topK = new DistillationDepth.TopK(k, null, null);
    }
    if (hidden != null && topK != null) {
      throw new UsageException(
          "--teacher-topk with --hidden-loss is not supported yet (the teacher's hidden states"
              + " are not cached)");
    }
    return new DistillationDepth(hidden, topK);
  }

  /** Training and held-out windows with their target masks (null masks: every position). */
  private record Data(
      List<int[]> train,
      List<boolean[]> trainMasks,
      List<int[]> eval,
      List<boolean[]> evalMasks,
      String source,
      String sha256) {}

  private static Data data(Args a, Path teacher, Path jsonl, Path text, PrintStream err)
      throws Exception {
    int evalWindows = a.integer("eval-windows", 16);
    if (evalWindows < 1) {
      throw new UsageException("--eval-windows must be at least 1, found " + evalWindows);
    }
    int context = dev.compactor.core.model.ModelConfig.read(teacher).maxPositions();
    try (TextTokenizer tokenizer = Tokenizers.forModel(teacher)) {
      if (jsonl != null) {
        List<TaskData.Example> examples =
            TaskData.read(jsonl, tokenizer, ChatTemplate.forModel(teacher).orElse(null));
        if (examples.size() < 2) {
          throw new UsageException("--data needs at least 2 examples (training and held-out)");
        }
        int seq = TaskData.longest(examples) - 1;
        if (seq + 1 > context) {
          throw new UsageException(
              "--data: the longest example has "
                  + (seq + 1)
                  + " tokens, over the model's context of "
                  + context);
        }
        int pad = tokenizer.eosId().orElse(0);
        // the last examples (an eighth, at most --eval-windows) are held out
        int held = Math.min(evalWindows, Math.max(1, examples.size() / 8));
        TaskData.Windows train =
            TaskData.windows(examples.subList(0, examples.size() - held), seq, pad);
        TaskData.Windows eval =
            TaskData.windows(examples.subList(examples.size() - held, examples.size()), seq, pad);
        return new Data(
            train.windows(),
            train.targetMasks(),
            eval.windows(),
            eval.targetMasks(),
            jsonl.toString(),
            ModelDirectory.sha256(jsonl));
      }
      if (text == null) {
        err.println(
            "note: no --calibration given; distilling on the bundled English Europarl training"
                + " text ("
                + Corpus.BUILTIN_EUROPARL
                + "), held out on its validation text");
      }
      CalibrationText cal = text == null ? CalibrationText.builtin() : CalibrationText.file(text);
      int seq = Math.min(a.integer("seq-len", 128), context);
      if (seq < 2) {
        throw new UsageException("--seq-len must be at least 2, found " + seq);
      }
      int samples = a.integer("samples", 128);
      if (samples < 1) {
        throw new UsageException("--samples must be at least 1, found " + samples);
      }
      List<int[]> train = cal.corpus().calibrationSamples(tokenizer, samples, seq + 1, SEED);
      int[] validation = tokenizer.encodeWithBos(cal.corpus().validationText());
      List<int[]> eval = new ArrayList<>();
      for (int at = 0; at + seq + 1 <= validation.length && eval.size() < evalWindows; at += seq) {
        eval.add(Arrays.copyOfRange(validation, at, at + seq + 1));
      }
      if (eval.isEmpty()) {
        throw new UsageException(
            "the calibration text's validation part is shorter than one window of "
                + (seq + 1)
                + " tokens");
      }
      return new Data(train, null, eval, null, cal.source(), cal.sha256());
    }
  }

  /**
   * {@code --eval-data FILE.jsonl}: every example of FILE held out, scored on its completion tokens
   * (to compare a task-distilled student with a general one on the same task set).
   */
  private static Data withEvalData(Data d, Path file, Path teacher) throws Exception {
    if (!Files.isRegularFile(file)) {
      throw new UsageException("--eval-data: expected a JSONL file, found none at " + file);
    }
    try (TextTokenizer tokenizer = Tokenizers.forModel(teacher)) {
      List<TaskData.Example> examples =
          TaskData.read(file, tokenizer, ChatTemplate.forModel(teacher).orElse(null));
      int seq = TaskData.longest(examples) - 1;
      int context = dev.compactor.core.model.ModelConfig.read(teacher).maxPositions();
      if (seq + 1 > context) {
        throw new UsageException(
            "--eval-data: the longest example has "
                + (seq + 1)
                + " tokens, over the model's context of "
                + context);
      }
      TaskData.Windows eval = TaskData.windows(examples, seq, tokenizer.eosId().orElse(0));
      return new Data(
          d.train, d.trainMasks, eval.windows(), eval.targetMasks(), d.source, d.sha256);
    }
  }

  private static void requireModel(Path dir, String option) throws UsageException {
    if (!Files.isRegularFile(dir.resolve("config.json"))) {
      throw new UsageException(option + ": expected a model directory with config.json at " + dir);
    }
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
