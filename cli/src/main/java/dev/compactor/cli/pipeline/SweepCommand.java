package dev.compactor.cli.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.UsageException;
import dev.compactor.core.frontier.Objective;
import dev.compactor.core.frontier.SweepProposer;
import dev.compactor.core.frontier.SweepSpec;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.TaskScore;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.S3Uri;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.avro.specific.SpecificRecord;

/**
 * {@code compactor sweep}: runs every recipe of a sweep spec ({@link SweepSpec}) as an ordinary job
 * on the pipeline, N at a time, collects each job's {@code EvaluationCompleted} from Kafka and
 * writes {@code frontier.md} (table with frontier marks) and {@code frontier.svg} (size against the
 * chosen quality, frontier line, chosen point ringed).
 *
 * <p>Sweep jobs never publish: each runs its recipe without the publish stage, so nothing is
 * released while the candidates are compared. With {@code --publish-best}, the smallest recipe
 * within {@code --within} of the best {@code --quality} is then submitted once more as a new job
 * with the base recipe's publish stage (or an ungated one when the base has none): its stages run
 * again (the same recipe and calibration text) and its own evaluation decides its own gates, so
 * exactly one model is published, or none when its gates fail. Jobs that fail are reported in the
 * table, not fatal.
 *
 * <p>In bayesian mode ({@link SweepProposer#of}) the jobs are not a fixed list: after a few seeded
 * random ones, each free slot gets the grid point a model of the ended jobs expects to be the
 * smallest with quality within {@code --within} of the baseline's ({@link Target}); each such pick
 * is printed with its acquisition value and predicted size and quality.
 *
 * <p>Without {@code --bootstrap} it starts the embedded stack as {@code demo} does (Kafka, S3,
 * registry, orchestrator, stage workers); with it, it submits to a running pipeline (options and
 * credentials as {@code submit} reads them), and {@code --model} must be a path or {@code s3://}
 * prefix that pipeline can read.
 */
public final class SweepCommand implements Command {

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(30);
  private static final Duration LATE_EVENTS = Duration.ofSeconds(30);

  @Override
  public String name() {
    return "sweep";
  }

  @Override
  public String summary() {
    return "run a sweep of recipes on the pipeline; write the Pareto frontier (table + SVG)";
  }

  @Override
  public String usage() {
    return "--spec FILE [--parallel N (2)] [--out DIR (sweep-<name>)] [--model DIR|s3://...]"
        + " [--quality perplexity|kl|top1|task.NAME (perplexity)] [--within F (0.05)]"
        + " [--publish-best] [--in-process] [--keep] [--bootstrap HOST:PORT --registry URL]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Set<String> options = new HashSet<>(Connection.OPTIONS);
    options.addAll(Set.of("spec", "parallel", "out", "model", "quality", "within"));
    Args args = Args.parse(argv, options, Set.of("publish-best", "in-process", "keep"));
    Path specFile = args.requiredPath("spec");
    if (!Files.isRegularFile(specFile)) {
      throw new UsageException("--spec: expected a sweep spec file, found none at " + specFile);
    }
    SweepSpec spec;
    try {
      spec = SweepSpec.parse(specFile);
    } catch (IllegalArgumentException | UnsupportedOperationException e) {
      throw new UsageException(specFile + ": " + e.getMessage());
    }
    int parallel = args.integer("parallel", 2);
    if (parallel < 1) {
      throw new UsageException("--parallel expects at least 1, found " + parallel);
    }
    double within = args.number("within", 0.05);
    Objective quality;
    try {
      quality = FrontierReport.quality(args.string("quality", "perplexity"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--quality: " + e.getMessage());
    }
    if (!(within >= 0)) {
      throw new UsageException("--within expects a fraction >= 0, found " + within);
    }
    if (spec.mode() == SweepSpec.Mode.BAYESIAN) {
      try {
        Target.of(quality, within);
      } catch (UnsupportedOperationException e) {
        throw new UsageException(e.getMessage());
      }
    }
    Path outDir = Path.of(args.string("out", "sweep-" + spec.name()));
    Files.createDirectories(outDir.resolve("recipes"));
    List<SweepSpec.Point> points = spec.expand();
    for (SweepSpec.Point p : points) {
      Files.writeString(outDir.resolve("recipes").resolve(p.name() + ".yaml"), p.sweepYaml());
    }
    long t0 = System.nanoTime();
    boolean external = args.present("bootstrap");
    String modelArg = args.string("model", null);
    Path data =
        args.present("data") && !external
            ? Files.createDirectories(Path.of(args.string("data", null)))
            : Files.createTempDirectory("compactor-sweep-");
    PipelineStack stack = null;
    try {
      PipelineClient client;
      String modelUri;
      String modelName;
      if (external) {
        Connection c = Connection.from(args);
        if (modelArg == null) {
          throw new UsageException("--model: a running pipeline needs a model it can read");
        }
        client = c.client();
        modelUri = modelArg.startsWith("s3://") ? modelArg : Path.of(modelArg).toUri().toString();
        modelName = modelArg;
      } else {
        Path model = modelArg == null ? TinyReferenceModel.shipped() : Path.of(modelArg);
        modelName = model.getFileName().toString();
        PipelineStack.Workers mode =
            args.has("in-process")
                ? PipelineStack.Workers.IN_PROCESS
                : PipelineStack.Workers.PROCESSES;
        err.println("sweep: starting the embedded stack in " + data);
        stack = PipelineStack.start(data, 0, mode, List.of());
        addWorkers(stack, mode, parallel, points);
        client = stack.client();
        modelUri =
            PipelineClient.upload(
                stack.blobs(),
                model,
                new S3Uri(LocalStack.DATA_BUCKET, "models/" + model.getFileName() + "/"));
        stack
            .blobs()
            .putBytes(
                S3Uri.parse(DemoCommand.CALIBRATION_URI),
                DemoCommand.calibrationText().getBytes(StandardCharsets.UTF_8),
                "text/plain");
        err.printf("sweep: stack up after %.1f s%n", (System.nanoTime() - t0) / 1e9);
      }
      Outcome o;
      try (client) {
        o =
            sweep(
                client,
                modelUri,
                modelName,
                spec,
                parallel,
                quality,
                within,
                args.has("publish-best"),
                err);
      }
      String md =
          o.markdown()
              + String.format(
                  Locale.ROOT,
                  "%nRun: `./compactor sweep %s` in %.0f s wall (%d jobs, %d at a time%s).%n",
                  String.join(" ", argv),
                  (System.nanoTime() - t0) / 1e9,
                  o.evaluated() + o.failed(),
                  parallel,
                  external ? "" : ", embedded stack");
      Files.writeString(outDir.resolve("frontier.md"), md);
      Files.writeString(outDir.resolve("frontier.svg"), o.svg());
      out.print(md);
      out.println(
          "Wrote " + outDir.resolve("frontier.md") + " and " + outDir.resolve("frontier.svg"));
      return o.evaluated() > 0 && (!args.has("publish-best") || o.published() != null) ? 0 : 1;
    } finally {
      if (stack != null) {
        stack.close();
      }
      if (!external && !args.has("keep")) {
        DemoCommand.deleteTree(data);
      } else if (!external) {
        err.println("sweep: kept the stack's data in " + data);
      }
    }
  }

  /**
   * What a sweep came to.
   *
   * @param markdown {@code frontier.md} without the line saying how it was run
   * @param svg {@code frontier.svg}
   * @param evaluated jobs that ended with an evaluation
   * @param failed jobs that ended without one
   * @param skipped combinations not run (invalid recipes)
   * @param published the published model's name, or null when nothing was published
   */
  public record Outcome(
      String markdown, String svg, int evaluated, int failed, int skipped, String published) {}

  /**
   * Runs a sweep's recipes as jobs on a running pipeline, {@code parallel} at a time, and reports
   * the frontier; with {@code publishBest} submits the chosen recipe again with its publish stage.
   *
   * @param quality {@code perplexity}, {@code kl}, {@code top1} or {@code task.<name>}
   * @param within the "smallest within" fraction, e.g. 0.05
   */
  public static Outcome sweep(
      PipelineClient client,
      String modelUri,
      String modelName,
      SweepSpec spec,
      int parallel,
      Objective quality,
      double within,
      boolean publishBest,
      PrintStream err) {
    long t0 = System.nanoTime();
    List<SweepSpec.Point> points = spec.expand();
    Map<String, FrontierReport.Row> rowsByName = new LinkedHashMap<>();
    List<SweepSpec.Point> runnable = new ArrayList<>();
    int skipped = 0;
    for (SweepSpec.Point p : points) {
      String problem = problem(p);
      if (problem == null) {
        runnable.add(p);
      } else {
        err.println("sweep: skipping " + p.name() + ": " + problem);
        rowsByName.put(
            p.name(), new FrontierReport.Row(p.name(), assignment(p), "SKIPPED", problem, null, 0));
        skipped++;
      }
    }
    boolean bayesian = spec.mode() == SweepSpec.Mode.BAYESIAN;
    err.printf(
        "sweep: %s, %s mode, %d of %d grid combinations %s, %d valid, %d at a time%n",
        spec.name(),
        spec.mode().name().toLowerCase(Locale.ROOT),
        points.size(),
        spec.gridSize(),
        bayesian ? "candidates (budget " + spec.budget() + " jobs)" : "picked",
        runnable.size(),
        parallel);
    Map<String, FrontierReport.Row> done = new LinkedHashMap<>();
    SweepProposer proposer = SweepProposer.of(spec, runnable, parallel);
    Target target = bayesian ? Target.of(quality, within) : null;
    List<String> picks = new ArrayList<>();
    runAll(client, modelUri, proposer, target, parallel, done, picks, t0, err);
    rowsByName.putAll(done);
    List<FrontierReport.Row> rows = new ArrayList<>();
    for (SweepSpec.Point p : points) {
      // bayesian mode runs only some candidates: the others have no row
      if (rowsByName.containsKey(p.name())) {
        rows.add(rowsByName.get(p.name()));
      }
    }
    FrontierReport report = new FrontierReport(spec.name(), modelName, rows, quality, within);
    StringBuilder md = new StringBuilder();
    md.append("# Sweep `").append(spec.name()).append("`: the Pareto frontier\n\n");
    md.append(report.markdown());
    if (bayesian) {
      md.append('\n').append(bayesianSummary(spec, runnable.size(), target, done, picks));
    }
    String published = null;
    if (publishBest && report.choice().isPresent()) {
      String winner = report.choice().get().chosen().label();
      SweepSpec.Point p =
          points.stream().filter(x -> x.name().equals(winner)).findFirst().orElseThrow();
      err.println("sweep: publishing " + winner + " (its recipe with publish, as a new job)");
      Published pub = publish(client, modelUri, p, report);
      md.append('\n').append(pub.markdown());
      if (pub.ready() != null) {
        published = pub.ready().getName().toString();
        err.println("sweep: published " + published + " v" + pub.ready().getVersion());
      }
    } else if (publishBest) {
      md.append("\nNothing published: no job was evaluated.\n");
    }
    int evaluated = (int) done.values().stream().filter(r -> r.evaluation() != null).count();
    return new Outcome(
        md.toString(), report.svg(), evaluated, done.size() - evaluated, skipped, published);
  }

  /** Why a point cannot be submitted (parser or submit check), or null when it can. */
  static String problem(SweepSpec.Point p) {
    if (!p.valid()) {
      return String.join("; ", p.problems().stream().map(Object::toString).toList());
    }
    try {
      SubmitCommand.check(p.sweepYaml());
      SubmitCommand.check(p.publishYaml());
      return null;
    } catch (UsageException e) {
      return e.getMessage();
    }
  }

  static String assignment(SweepSpec.Point p) {
    List<String> parts = new ArrayList<>();
    for (Map.Entry<String, JsonNode> e : p.assignment().entrySet()) {
      String path = e.getKey();
      String leaf = path.substring(path.lastIndexOf('.') + 1);
      JsonNode v = e.getValue();
      parts.add(leaf + " " + (v.isValueNode() ? v.asText() : v.toString()));
    }
    return String.join(", ", parts);
  }

  /**
   * One more worker per extra job in flight for every stage the sweep's recipes use (and
   * ingestion), so {@code parallel} jobs can run their steps at the same time.
   */
  private static void addWorkers(
      PipelineStack stack, PipelineStack.Workers mode, int parallel, List<SweepSpec.Point> points)
      throws java.io.IOException {
    List<SweepSpec.Point> runnable = points.stream().filter(p -> problem(p) == null).toList();
    Set<String> stages = new LinkedHashSet<>();
    stages.add("ingestion");
    for (SweepSpec.Point p : runnable) {
      for (StageSpec s : Recipe.parse(p.sweepYaml()).stages()) {
        stages.add(s.kind().recipeKey());
      }
    }
    for (int i = 2; i <= Math.min(parallel, runnable.size()); i++) {
      for (String stage : stages) {
        if (mode == PipelineStack.Workers.IN_PROCESS) {
          stack.addWorker(stage, stage + "-" + i);
        } else {
          stack.addProcess(stage, stage + "-" + i, List.of());
        }
      }
    }
  }

  /** A job in flight. */
  private static final class Running {
    final SweepSpec.Point point;
    final long startedNs = System.nanoTime();
    JobStatus end;
    long endedNs;
    EvaluationCompleted evaluation;
    String failure = "";

    Running(SweepSpec.Point point) {
      this.point = point;
    }
  }

  /**
   * Keeps {@code parallel} jobs in flight, asking {@code proposer} for each next point and telling
   * it how each ended, until it has none left and every job has ended; records each.
   *
   * @param target how an evaluation becomes the proposer's size and quality; null for a fixed list
   * @param picks gets one line per submitted point: its name and, for a model-driven pick, the
   *     acquisition value and prediction
   */
  private static void runAll(
      PipelineClient client,
      String modelUri,
      SweepProposer proposer,
      Target target,
      int parallel,
      Map<String, FrontierReport.Row> done,
      List<String> picks,
      long t0,
      PrintStream err) {
    Map<String, Running> running = new LinkedHashMap<>();
    String submitter = "compactor-sweep";
    boolean more = true;
    try (PipelineClient.Follower follower = client.follow(false)) {
      while (more || !running.isEmpty()) {
        while (more && inFlight(running) < parallel) {
          var pick = proposer.next();
          if (pick.isEmpty()) {
            more = false;
            break;
          }
          SweepSpec.Point p = pick.get().point();
          String jobId = client.submit(modelUri, p.sweepYaml(), submitter);
          running.put(jobId, new Running(p));
          String why = target == null ? "" : target.describe(pick.get().prediction());
          picks.add("`" + p.name() + "`" + (why.isEmpty() ? "" : ": " + why));
          err.printf(
              Locale.ROOT,
              "  %6.1fs submitted %s as job %s%s%n",
              (System.nanoTime() - t0) / 1e9,
              p.name(),
              jobId,
              why.isEmpty() ? "" : " (" + why + ")");
        }
        for (SpecificRecord r : follower.poll(null, Duration.ofMillis(300))) {
          String jobId = jobId(r);
          Running j = jobId == null ? null : running.get(jobId);
          if (j == null) {
            continue;
          }
          if (r instanceof EvaluationCompleted e) {
            j.evaluation = e;
          } else if (r instanceof StageCompleted c) {
            err.printf(
                Locale.ROOT,
                "  %6.1fs %s: %s%n",
                (System.nanoTime() - t0) / 1e9,
                j.point.name(),
                JobReport.line(c));
          } else if (r instanceof StageFailed f) {
            j.failure = "step " + f.getStep() + " (" + f.getStage() + "): " + f.getReason();
          } else if (r instanceof JobStatus s && DemoCommand.isTerminal(s.getState())) {
            j.end = s;
            j.endedNs = System.nanoTime();
            err.printf(
                Locale.ROOT,
                "  %6.1fs %s %s in %.1f s%n",
                (System.nanoTime() - t0) / 1e9,
                j.point.name(),
                s.getState(),
                (j.endedNs - j.startedNs) / 1e9);
          }
        }
        long now = System.nanoTime();
        for (var it = running.entrySet().iterator(); it.hasNext(); ) {
          Running j = it.next().getValue();
          boolean timedOut = j.end == null && now - j.startedNs > JOB_TIMEOUT.toNanos();
          // the evaluation of the last step may be polled after the status that follows it
          boolean settled =
              j.end != null
                  && (j.evaluation != null
                      || j.end.getState() != JobState.SUCCEEDED
                      || now - j.endedNs > LATE_EVENTS.toNanos());
          if (!settled && !timedOut) {
            continue;
          }
          String state = timedOut ? "TIMED_OUT" : j.end.getState().name();
          String message =
              timedOut
                  ? "no final status within " + JOB_TIMEOUT.toMinutes() + " min"
                  : j.end.getState() == JobState.SUCCEEDED && j.evaluation == null
                      ? "succeeded without an EvaluationCompleted"
                      : j.failure.isEmpty() ? j.end.getMessage().toString() : j.failure;
          double secs = ((j.end == null ? now : j.endedNs) - j.startedNs) / 1e9;
          double[] figures =
              target == null || !"SUCCEEDED".equals(state) ? null : target.figures(j.evaluation);
          if (figures != null) {
            proposer.evaluated(j.point, figures[0], figures[1], figures[2]);
          } else {
            // failed, timed out, or evaluated without the quality: nothing to fit
            proposer.failed(j.point);
          }
          done.put(
              j.point.name(),
              new FrontierReport.Row(
                  j.point.name(), assignment(j.point), state, message, j.evaluation, secs));
          it.remove();
        }
      }
    }
  }

  /**
   * The bayesian goal: the smallest stored size whose quality is within {@code within} of the
   * uncompressed model's, which every {@code EvaluationCompleted} carries: perplexity ≤ {@code
   * baselinePerplexity · (1 + within)}; top-1 agreement ≥ {@code 1 − within} (the baseline agrees
   * with itself everywhere); a task's acc ≥ its {@code baselineAcc · (1 − within)}. KL is refused:
   * the baseline's is 0, so no relative bound exists. This is a fixed bound, unlike the report's
   * "within X of the best candidate", which moves with what was run; the summary says both.
   *
   * @param quality the quality objective
   * @param within the fraction
   */
  record Target(Objective quality, double within) {

    static Target of(Objective quality, double within) {
      if (quality.name().equals("klDivergence")) {
        throw new UnsupportedOperationException(
            "not supported yet: mode: bayesian with --quality kl (the baseline's KL is 0, so"
                + " 'within X of the baseline' has no bound); use perplexity, top1 or task.NAME");
      }
      return new Target(quality, within);
    }

    /** The maximised qualities are negated: the proposer minimises. */
    private double sign() {
      return quality.goal() == Objective.Goal.MINIMIZE ? 1 : -1;
    }

    /**
     * {size bytes, quality, bound}, quality and bound in the proposer's minimised orientation; null
     * when the evaluation lacks the quality or its baseline.
     */
    double[] figures(EvaluationCompleted e) {
      if (e == null) {
        return null;
      }
      double size = e.getMetrics().getSizeBytes();
      Double q;
      Double base;
      switch (quality.name()) {
        case "perplexity" -> {
          q = e.getMetrics().getPerplexity();
          base = e.getMetrics().getBaselinePerplexity();
        }
        case "top1Agreement" -> {
          q = e.getMetrics().getTop1Agreement();
          base = 1.0;
        }
        default -> {
          String task = quality.name().substring("task.".length());
          TaskScore t =
              e.getTasks().stream()
                  .filter(x -> x.getTask().toString().equals(task))
                  .findFirst()
                  .orElse(null);
          q = t == null ? null : t.getAcc();
          base = t == null ? null : t.getBaselineAcc();
        }
      }
      if (q == null || base == null || q.isNaN() || base.isNaN() || !(size > 0)) {
        return null;
      }
      double bound = bound(base);
      return new double[] {size, sign() * q, sign() * bound};
    }

    /** The bound in the quality's own orientation. */
    double bound(double baseline) {
      double slack = within * Math.abs(baseline);
      return quality.goal() == Objective.Goal.MINIMIZE ? baseline + slack : baseline - slack;
    }

    /** A pick's line: "seeded random start" or its acquisition and prediction. */
    String describe(SweepProposer.Prediction p) {
      if (p == null) {
        return "seeded random start";
      }
      return String.format(
          Locale.ROOT,
          "acquisition %.4g, P(feasible) %.3f, predicted size %,.0f bytes (log sd %.3f), %s %.4f"
              + " (sd %.4f)",
          p.acquisition(),
          p.feasible(),
          p.sizeBytes(),
          p.sdLogSize(),
          quality.label(),
          sign() * p.quality(),
          p.sdQuality());
    }
  }

  /** The bayesian paragraph of frontier.md: the goal, what it found, each pick in order. */
  static String bayesianSummary(
      SweepSpec spec,
      int candidates,
      Target target,
      Map<String, FrontierReport.Row> done,
      List<String> picks) {
    StringBuilder s = new StringBuilder("## Bayesian search\n\n");
    String best = null;
    double bestSize = Double.POSITIVE_INFINITY;
    double bound = Double.NaN;
    int feasible = 0;
    for (FrontierReport.Row r : done.values()) {
      double[] f = target.figures(r.evaluation());
      if (f == null) {
        continue;
      }
      bound = f[2];
      if (f[1] <= f[2]) {
        feasible++;
        if (f[0] < bestSize) {
          bestSize = f[0];
          best = r.recipe();
        }
      }
    }
    s.append(
        String.format(
            Locale.ROOT,
            "%d jobs of a budget of %d (seed %d) among %d valid candidates. Goal: the smallest size"
                + " with %s %s %s (within %s of the uncompressed model's)",
            done.size(),
            spec.budget(),
            spec.seed(),
            candidates,
            target.quality().label(),
            target.quality().goal() == Objective.Goal.MINIMIZE ? "≤" : "≥",
            Double.isNaN(bound) ? "(no evaluation carried it)" : fmt(target.sign() * bound),
            String.format(Locale.ROOT, "%.3g %%", 100 * target.within())));
    s.append(
        best == null
            ? "; none of the jobs run met it.\n"
            : String.format(
                Locale.ROOT,
                "; %d of the jobs run met it, the smallest **`%s`** (%,d bytes).%n",
                feasible,
                best,
                (long) bestSize));
    s.append("\nPicks in submission order (a model fitted on the jobs ended by then):\n\n");
    for (int i = 0; i < picks.size(); i++) {
      s.append(i + 1).append(". ").append(picks.get(i)).append('\n');
    }
    return s.toString();
  }

  private static String fmt(double v) {
    return String.format(Locale.ROOT, Math.abs(v) < 0.01 && v != 0 ? "%.5f" : "%.4f", v);
  }

  private static int inFlight(Map<String, Running> running) {
    return (int) running.values().stream().filter(j -> j.end == null).count();
  }

  private static String jobId(SpecificRecord r) {
    Object id = r.get(r.getSchema().getField("jobId").pos());
    return id == null ? null : id.toString();
  }

  /** What publishing the chosen recipe came to: its ModelReady (or null) and a paragraph. */
  private record Published(ModelReady ready, String markdown) {}

  /** Submits the winner's recipe with publish and waits for its end. */
  private static Published publish(
      PipelineClient client, String modelUri, SweepSpec.Point p, FrontierReport report) {
    List<SpecificRecord> seen = new ArrayList<>();
    JobStatus end;
    String jobId;
    try (PipelineClient.Follower follower = client.follow(false)) {
      jobId = client.submit(modelUri, p.publishYaml(), "compactor-sweep");
      end =
          (JobStatus)
              follower.await(
                  jobId,
                  JOB_TIMEOUT,
                  seen::add,
                  r -> r instanceof JobStatus s && DemoCommand.isTerminal(s.getState()));
      if (end.getState() == JobState.SUCCEEDED
          && seen.stream().noneMatch(ModelReady.class::isInstance)) {
        try {
          follower.await(jobId, LATE_EVENTS, seen::add, ModelReady.class::isInstance);
        } catch (IllegalStateException e) {
          // no ModelReady: the gates held it back; said below
        }
      }
    }
    ModelReady ready =
        (ModelReady) seen.stream().filter(ModelReady.class::isInstance).findFirst().orElse(null);
    EvaluationCompleted again =
        (EvaluationCompleted)
            seen.stream()
                .filter(EvaluationCompleted.class::isInstance)
                .reduce((a, b) -> b)
                .orElse(null);
    StringBuilder s = new StringBuilder("## Published\n\n");
    s.append("The chosen recipe `")
        .append(p.name())
        .append("` was submitted again with its publish stage as job `")
        .append(jobId)
        .append("`: ")
        .append(end.getState())
        .append(" (")
        .append(end.getMessage())
        .append(").\n");
    if (ready != null) {
      s.append(
          String.format(
              Locale.ROOT,
              "ModelReady: `%s` v%s at `%s`, model card `%s`.%n",
              ready.getName(),
              ready.getVersion(),
              ready.getUri(),
              ready.getModelCardUri()));
    } else {
      s.append("No ModelReady: nothing was published.\n");
    }
    EvaluationCompleted first = report.row(p.name()).evaluation();
    if (again != null && first != null) {
      s.append(
          String.format(
              Locale.ROOT,
              "Its evaluation against the sweep's: size %,d vs %,d bytes, perplexity %.4f vs %.4f.%n",
              again.getMetrics().getSizeBytes(),
              first.getMetrics().getSizeBytes(),
              again.getMetrics().getPerplexity(),
              first.getMetrics().getPerplexity()));
    }
    return new Published(ready, s.toString());
  }
}
