package dev.compactor.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.pipeline.PipelineClient;
import dev.compactor.cli.pipeline.PipelineStack;
import dev.compactor.cli.pipeline.WorkerProcess;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageProgress;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.StageConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 8's chaos run: every stage service in a process of its own, at least {@value #KILLS} {@code
 * kill -9}s of workers in the middle of a step (each replaced by a fresh process, as a supervisor
 * would), and every job still ends SUCCEEDED with exactly one ModelReady and no scratch directory
 * left behind. Then a worker whose every step runs out of memory (a real {@link OutOfMemoryError}:
 * direct memory capped below what loading a model needs) ends its job FAILED within the attempt
 * limit, and a resource-bomb recipe is refused before anything runs.
 */
class ChaosIT {
  static final int KILLS = 10;
  static final int MAX_KILLS = 12;
  static final Duration TIMEOUT = Duration.ofMinutes(15);

  /** Wanda + GPTQ on a small random model, with enough calibration that each step takes a while. */
  static final String PRUNE_QUANTIZE =
      "name: chaos-pq\n"
          + "stages:\n"
          + "  - prune:    { method: wanda, sparsity: 0.3 }\n"
          + "  - quantize: { method: gptq, bits: 4, group_size: 32, export: [\"gguf:q4_0\"] }\n"
          + "  - evaluate: { perplexity: { seq_len: 64 }, kl: true }\n"
          + "  - publish:  { gates: { max_size_ratio: 0.6 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 64, seq_len: 64 }\n";

  static final String DISTILL =
      "name: chaos-distill\n"
          + "stages:\n"
          + "  - distill:  { keep_layers: 2, steps: 150, lr: 0.001, checkpoint_every: 10 }\n"
          + "  - evaluate: { perplexity: { seq_len: 64 }, kl: true }\n"
          + "  - publish:  { gates: { max_size_ratio: 1.0 } }\n"
          + "calibration: { dataset: builtin:europarl, samples: 16, seq_len: 64 }\n";

  static final String BOMB =
      "name: chaos-bomb\n"
          + "stages:\n"
          + "  - prune: { method: wanda, sparsity: 0.5 }\n"
          + "calibration: { dataset: builtin:europarl, samples: 1000000000, seq_len: 64 }\n";

  @TempDir Path tmp;

  private final Map<String, Integer> serial = new HashMap<>();

  @Test
  void killedWorkersLoseNoJobAnErrorFailsWithinTheLimitAndABombIsRefused() throws Exception {
    Path model = PipelineScenarios.randomLlama(tmp.resolve("model"), 4, 11);
    try (PipelineStack stack =
            PipelineStack.start(tmp.resolve("stack"), 0, PipelineStack.Workers.NONE, List.of());
        PipelineClient client = stack.client();
        PipelineClient.Follower f = client.follow(false)) {
      Map<String, WorkerProcess> workers = new LinkedHashMap<>();
      for (String stage : PipelineStack.STAGES) {
        workers.put(stage, start(stack, stage, List.of()));
      }
      String modelUri =
          PipelineClient.upload(
              stack.blobs(), model, new S3Uri(LocalStack.DATA_BUCKET, "models/chaos/"));

      Map<String, List<SpecificRecord>> events = new LinkedHashMap<>();
      Map<String, Long> lastProgressMs = new HashMap<>(); // worker -> time of its last progress
      Map<String, String> runningStep = new HashMap<>(); // worker -> "job/step"
      Map<String, Integer> killsOfStep = new HashMap<>();
      Map<String, Integer> killsOfStage = new LinkedHashMap<>();
      int kills = 0;
      int submitted = 0;
      long end = System.nanoTime() + TIMEOUT.toNanos();
      while (System.nanoTime() < end && (kills < KILLS || !PipelineScenarios.allDone(events))) {
        if (kills < KILLS && unfinished(events) < 3) {
          String recipe = submitted % 3 == 2 ? DISTILL : PRUNE_QUANTIZE;
          events.put(client.submit(modelUri, recipe, "chaos"), new ArrayList<>());
          submitted++;
        }
        for (SpecificRecord r : f.poll(null, Duration.ofMillis(200))) {
          String job = String.valueOf(r.get(r.getSchema().getField("jobId").pos()));
          if (events.containsKey(job)) {
            events.get(job).add(r);
          }
          if (r instanceof StageProgress p && p.getFraction() < 0.9) {
            lastProgressMs.put(p.getWorker(), System.currentTimeMillis());
            runningStep.put(p.getWorker(), p.getJobId() + "/" + p.getStep());
          } else if (r instanceof StageCompleted c) {
            runningStep.remove(c.getWorker());
          }
        }
        if (kills >= MAX_KILLS) {
          continue;
        }
        for (Map.Entry<String, WorkerProcess> w : workers.entrySet()) {
          String id = w.getValue().id();
          String step = runningStep.get(id);
          long since = System.currentTimeMillis() - lastProgressMs.getOrDefault(id, 0L);
          if (step != null && since < 1_000 && killsOfStep.getOrDefault(step, 0) < 2) {
            w.getValue().kill(); // SIGKILL mid-step
            kills++;
            killsOfStep.merge(step, 1, Integer::sum);
            killsOfStage.merge(w.getKey(), 1, Integer::sum);
            runningStep.remove(id);
            w.setValue(start(stack, w.getKey(), List.of()));
            break;
          }
        }
      }
      System.out.printf(
          "ChaosIT: %d kill -9s mid-step (%s) over %d jobs%n", kills, killsOfStage, events.size());
      assertTrue(kills >= KILLS, "only " + kills + " kills landed mid-step");
      for (Map.Entry<String, List<SpecificRecord>> job : events.entrySet()) {
        JobStatus last = PipelineScenarios.lastStatus(job.getValue());
        assertEquals(
            JobState.SUCCEEDED,
            last == null ? null : last.getState(),
            job.getKey() + ": " + last + " " + failures(job.getValue()));
        assertEquals(1, PipelineScenarios.count(job.getValue(), ModelReady.class), job.getKey());
      }

      // a worker that cannot load any model: a real OutOfMemoryError in every attempt
      workers.get("evaluate").close();
      workers.put("evaluate", start(stack, "evaluate", List.of("-XX:MaxDirectMemorySize=8m")));
      String oom = client.submit(modelUri, PipelineScenarios.QUICK, "chaos-oom");
      List<SpecificRecord> oomEvents = await(f, oom);
      JobStatus failed = PipelineScenarios.lastStatus(oomEvents);
      assertEquals(JobState.FAILED, failed.getState(), failures(oomEvents));
      assertTrue(failed.getMessage().contains("OutOfMemoryError"), failed.getMessage());
      assertTrue(failed.getMessage().contains("attempt 3"), failed.getMessage());
      assertEquals(3, PipelineScenarios.count(oomEvents, StageFailed.class), failures(oomEvents));

      String bomb = client.submit(modelUri, BOMB, "chaos-bomb");
      JobStatus refused = PipelineScenarios.lastStatus(await(f, bomb));
      assertEquals(JobState.REJECTED, refused.getState());
      assertTrue(refused.getMessage().contains("above the limit"), refused.getMessage());

      workers.values().forEach(WorkerProcess::close);
      List<Path> left;
      try (Stream<Path> s = Files.walk(tmp.resolve("stack").resolve("work"))) {
        left = s.filter(Files::isRegularFile).toList();
      }
      assertEquals(List.of(), left, "scratch directories left behind after " + kills + " kills");
    }
  }

  private WorkerProcess start(PipelineStack stack, String stage, List<String> jvm)
      throws Exception {
    int n = serial.merge(stage, 1, Integer::sum);
    return stack.addProcess(
        stage,
        stage + "-" + n,
        jvm,
        Map.of(
            StageConfig.PROGRESS_INTERVAL_MS.envName(), "200",
            StageConfig.SESSION_TIMEOUT_MS.envName(), "6000"));
  }

  private static List<SpecificRecord> await(PipelineClient.Follower f, String job) {
    List<SpecificRecord> l = new ArrayList<>();
    long end = System.nanoTime() + Duration.ofMinutes(5).toNanos();
    while (System.nanoTime() < end) {
      for (SpecificRecord r : f.poll(job, Duration.ofMillis(300))) {
        l.add(r);
        if (r instanceof JobStatus s
            && (s.getState() == JobState.FAILED || s.getState() == JobState.REJECTED)) {
          return l;
        }
      }
    }
    throw new AssertionError("job " + job + " did not end: " + l);
  }

  private static String failures(List<SpecificRecord> l) {
    return l.stream()
        .filter(StageFailed.class::isInstance)
        .map(Object::toString)
        .toList()
        .toString();
  }

  private static long unfinished(Map<String, List<SpecificRecord>> events) {
    return events.values().stream().filter(l -> !PipelineScenarios.ended(l)).count();
  }
}
