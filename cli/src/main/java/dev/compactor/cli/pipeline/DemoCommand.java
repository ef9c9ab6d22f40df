package dev.compactor.cli.pipeline;

import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.S3Uri;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.avro.specific.SpecificRecord;

/**
 * {@code compactor demo}: the whole product on one machine. Starts the embedded stack, the
 * orchestrator and every stage service in this JVM, makes (or reuses) the tiny reference model,
 * uploads it and a calibration text to S3, submits a job with a recipe that uses every stage, shows
 * the job's events as they arrive and prints the evaluation (baseline vs compressed) and the {@code
 * ModelReady} event.
 */
public final class DemoCommand implements Command {

  /** The recipe used when none is given. */
  public static final Path DEFAULT_RECIPE = Path.of("recipes", "demo.yaml");

  /** Where the demo puts the calibration text its recipe names. */
  public static final String CALIBRATION_URI = "s3://compactor-data/calibration.txt";

  private static final Duration JOB_TIMEOUT = Duration.ofMinutes(20);

  @Override
  public String name() {
    return "demo";
  }

  @Override
  public String summary() {
    return "run every stage on the tiny model in an embedded pipeline and print the result";
  }

  @Override
  public String usage() {
    return "[--json] [--recipe FILE] [--keep] [--model DIR (instead of the tiny model)]"
        + " [--in-process (stage workers in this JVM)]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(argv, Set.of("recipe", "data", "model"), Set.of("json", "keep", "in-process"));
    Path recipe = Path.of(args.string("recipe", DEFAULT_RECIPE.toString()));
    if (!Files.isRegularFile(recipe)) {
      throw new UsageException("recipe " + recipe + ": expected a YAML file, found none");
    }
    String recipeYaml = Files.readString(recipe);
    boolean json = args.has("json");
    long t0 = System.nanoTime();
    Path model;
    if (args.present("model")) {
      model = args.requiredPath("model");
    } else {
      model = TinyReferenceModel.shipped();
    }
    Path data =
        args.present("data")
            ? Files.createDirectories(Path.of(args.string("data", null)))
            : Files.createTempDirectory("compactor-demo-");
    err.println(
        "demo: starting Kafka, S3, schema registry, orchestrator and "
            + PipelineStack.STAGES.size()
            + " stage services in "
            + data);
    EvaluationCompleted evaluation = null;
    ModelReady ready = null;
    JobStatus last = null;
    List<StageCompleted> seenSteps = new ArrayList<>();
    PipelineStack.Workers mode =
        args.has("in-process") ? PipelineStack.Workers.IN_PROCESS : PipelineStack.Workers.PROCESSES;
    try (PipelineStack stack = PipelineStack.start(data, 0, mode, List.of());
        PipelineClient client = stack.client()) {
      err.printf("demo: stack up after %.1f s%n", (System.nanoTime() - t0) / 1e9);
      String modelUri =
          PipelineClient.upload(
              stack.blobs(),
              model,
              new S3Uri(LocalStack.DATA_BUCKET, "models/" + model.getFileName() + "/"));
      stack
          .blobs()
          .putBytes(
              S3Uri.parse(CALIBRATION_URI),
              calibrationText().getBytes(StandardCharsets.UTF_8),
              "text/plain");
      try (PipelineClient.Follower follower = client.follow(false)) {
        String jobId = client.submit(modelUri, recipeYaml, "compactor-demo");
        err.println("demo: submitted job " + jobId + " (" + modelUri + ", " + recipe + ")");
        List<SpecificRecord> seen = new ArrayList<>();
        SpecificRecord end =
            follower.await(
                jobId,
                JOB_TIMEOUT,
                r -> {
                  seen.add(r);
                  err.printf("  %6.1fs %s%n", (System.nanoTime() - t0) / 1e9, JobReport.line(r));
                },
                r -> r instanceof JobStatus s && isTerminal(s.getState()));
        last = (JobStatus) end;
        if (last.getState() == JobState.SUCCEEDED
            && seen.stream().noneMatch(ModelReady.class::isInstance)) {
          // the public events of the last step may be polled after the status that follows them
          follower.await(jobId, Duration.ofSeconds(30), seen::add, ModelReady.class::isInstance);
        }
        for (SpecificRecord r : seen) {
          if (r instanceof StageCompleted c) {
            seenSteps.add(c);
          }
          if (r instanceof EvaluationCompleted e) {
            evaluation = e;
          } else if (r instanceof ModelReady m) {
            ready = m;
          }
        }
      }
    } finally {
      if (!args.has("keep")) {
        deleteTree(data);
      } else {
        err.println("demo: kept the stack's data in " + data);
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (json) {
      out.println(JobReport.json(evaluation, ready));
    } else {
      out.println();
      JobReport.steps(seenSteps, out);
      if (evaluation != null) {
        JobReport.table(evaluation, out);
        out.println();
      }
      if (ready != null) {
        JobReport.modelReady(ready, out);
      }
      out.printf("Job %s in %.1f s: %s%n", last.getState(), seconds, last.getMessage());
    }
    return last.getState() == JobState.SUCCEEDED && ready != null ? 0 : 1;
  }

  static boolean isTerminal(JobState s) {
    return s == JobState.SUCCEEDED
        || s == JobState.FAILED
        || s == JobState.REJECTED
        || s == JobState.CANCELLED;
  }

  /** A calibration file: part of the Europarl training documents and all held-out ones. */
  public static String calibrationText() throws IOException {
    Corpus c = Corpus.europarlEnglish();
    List<String> docs =
        new ArrayList<>(c.trainDocuments().subList(0, Math.min(400, c.trainDocuments().size())));
    docs.addAll(c.testDocuments());
    return String.join("\n\n", docs) + "\n";
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
