package dev.compactor.services.orchestrator;

import static dev.compactor.services.orchestrator.TopologyFixture.artifact;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.StageRequested;
import dev.compactor.runtime.SourcePolicy;
import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobTopologyTest {

  static final String DEMO_RECIPE_PATH = "../../recipes/demo-all-stages.yaml";
  static final String MODEL = "s3://compactor-data/models/tiny/";

  @TempDir Path stateDir;
  TopologyFixture t;
  String demoRecipe;

  @BeforeEach
  void setUp() throws IOException {
    t = new TopologyFixture(stateDir);
    demoRecipe = Files.readString(Path.of(DEMO_RECIPE_PATH));
  }

  @AfterEach
  void tearDown() {
    t.close();
  }

  /** The one request emitted since the last drain; fails if there are none or several. */
  private StageRequested onlyRequest() {
    List<StageRequested> r = t.drainRequests();
    assertEquals(1, r.size(), "expected exactly one StageRequested, got " + r);
    return r.get(0);
  }

  private List<JobState> states() {
    return t.status.readValuesToList().stream().map(JobStatus::getState).toList();
  }

  @Test
  void happyPathRunsEveryStageInOrderFeedingEachTheModelBefore() {
    Recipe recipe = Recipe.parse(demoRecipe);
    t.submit("job-1", MODEL, demoRecipe);

    StageRequested ingest = onlyRequest();
    assertEquals("ingestion", ingest.getStage());
    assertEquals(0, ingest.getStep());
    assertEquals(MODEL, ingest.getModelUri());
    assertNull(ingest.getInput());
    assertNull(ingest.getBaseline());
    assertEquals(demoRecipe, ingest.getRecipeYaml());
    assertEquals(1, ingest.getAttempt());
    List<JobStatus> first = t.status.readValuesToList();
    assertEquals(
        List.of(JobState.SUBMITTED, JobState.RUNNING),
        first.stream().map(JobStatus::getState).toList());
    assertEquals(6, first.get(1).getTotalSteps());
    assertEquals("ingestion", first.get(1).getStage());

    ArtifactRef baseline = artifact("b", 1000);
    t.complete(ingest, baseline);
    ArtifactRef model = baseline;
    String[] stages = {"prune", "distill", "quantize", "evaluate", "publish"};
    StageRequested previous = onlyRequest();
    for (int i = 0; i < stages.length; i++) {
      StageRequested r = previous;
      assertEquals(stages[i], r.getStage(), "step " + (i + 1));
      assertEquals(i + 1, r.getStep());
      assertEquals(model, r.getInput(), "step " + (i + 1) + " works on the previous model");
      assertEquals(baseline, r.getBaseline(), "every step after ingestion gets the baseline");
      assertNull(r.getModelUri());
      assertEquals("builtin:europarl", r.getCalibrationUri());
      assertEquals(recipe.stage(i).toJson(), r.getParamsJson());
      assertEquals(
          recipe.stage(i).params(),
          dev.compactor.core.recipe.StageSpec.fromJson(
                  StageKind.fromRecipeKey(r.getStage()).orElseThrow(), r.getParamsJson())
              .params());
      assertEquals(List.of(JobState.RUNNING), states());
      boolean makesModel = !stages[i].equals("evaluate") && !stages[i].equals("publish");
      ArtifactRef out = makesModel ? artifact("m" + i, 900 - 100 * i) : null;
      t.complete(r, out);
      model = makesModel ? out : model;
      if (i + 1 < stages.length) {
        previous = onlyRequest();
      }
    }
    assertTrue(t.drainRequests().isEmpty(), "nothing is requested after the last step");
    List<JobStatus> last = t.status.readValuesToList();
    assertEquals(1, last.size());
    assertEquals(JobState.SUCCEEDED, last.get(0).getState());
    assertEquals(5, last.get(0).getStep());
    assertEquals("publish", last.get(0).getStage());

    JobRecord job = t.store().get("job-1");
    assertEquals(JobState.SUCCEEDED, job.state());
    assertEquals("demo-all-stages", job.recipeName());
    assertEquals(JobRecord.Artifact.of(baseline), job.baseline());
    assertTrue(job.steps().stream().allMatch(s -> s.status() == JobRecord.StepStatus.COMPLETED));
    assertEquals(JobRecord.Artifact.of(artifact("m2", 700)), job.steps().get(3).output());
    assertEquals(1.5, job.steps().get(3).metrics().get("seconds"));
    assertEquals(
        List.of(
            JobState.SUBMITTED,
            JobState.RUNNING,
            JobState.RUNNING,
            JobState.RUNNING,
            JobState.RUNNING,
            JobState.RUNNING,
            JobState.RUNNING,
            JobState.SUCCEEDED),
        job.history().stream().map(JobRecord.Transition::state).toList());
  }

  @Test
  void duplicateAndStaleEventsChangeNothing() {
    t.submit("job-2", MODEL, demoRecipe);
    t.submit("job-2", MODEL, demoRecipe);
    StageRequested ingest = onlyRequest();
    t.status.readValuesToList();

    t.complete(ingest, artifact("b", 1000));
    t.complete(ingest, artifact("b", 1000));
    StageRequested prune = onlyRequest();
    assertEquals(1, prune.getStep());
    assertEquals(List.of(JobState.RUNNING), states(), "one transition for two completions");

    // a completion for a step not yet requested (step 2) and a failure of the finished step 0
    t.completed.pipeInput(
        "job-2",
        dev.compactor.events.StageCompleted.newBuilder()
            .setJobId("job-2")
            .setStep(2)
            .setStage("distill")
            .setOutput(artifact("x", 1))
            .setMetrics(java.util.Map.of())
            .setDurationMs(1)
            .setWorker("w")
            .setAttempt(1)
            .setCompletedAtMs(1)
            .build());
    t.fail(ingest, "late failure of a finished step");
    assertTrue(t.drainRequests().isEmpty());
    assertTrue(states().isEmpty());

    t.complete(prune, artifact("p", 500));
    assertEquals("distill", onlyRequest().getStage());
    t.complete(prune, artifact("p", 500));
    assertTrue(t.drainRequests().isEmpty(), "a repeated completion of step 1 requests nothing");
    assertEquals(2, t.store().get("job-2").currentStep());
  }

  @Test
  void stageFailedFailsTheJobWithTheReason() {
    t.submit("job-3", MODEL, demoRecipe);
    StageRequested ingest = onlyRequest();
    t.complete(ingest, artifact("b", 1000));
    StageRequested prune = onlyRequest();
    t.status.readValuesToList();

    t.fail(
        prune, "tensor model.layers.0.mlp.up_proj.weight has shape [3] but config says [64, 16]");
    JobStatus failed = t.status.readValue();
    assertEquals(JobState.FAILED, failed.getState());
    assertEquals(1, failed.getStep());
    assertEquals("prune", failed.getStage());
    assertTrue(
        failed.getMessage().contains("has shape [3] but config says [64, 16]"),
        failed.getMessage());
    assertTrue(failed.getMessage().contains("worker-prune"), failed.getMessage());

    t.complete(prune, artifact("p", 1));
    assertTrue(t.drainRequests().isEmpty(), "a failed job requests nothing more");
    assertTrue(t.status.isEmpty());
    JobRecord job = t.store().get("job-3");
    assertEquals(JobState.FAILED, job.state());
    assertEquals(JobRecord.StepStatus.FAILED, job.steps().get(1).status());
    assertEquals(JobRecord.StepStatus.PENDING, job.steps().get(2).status());
  }

  @Test
  void modelStageCompletingWithoutOutputFailsTheJob() {
    t.submit("job-4", MODEL, demoRecipe);
    t.complete(onlyRequest(), null);
    assertTrue(t.drainRequests().isEmpty());
    List<JobStatus> s = t.status.readValuesToList();
    JobStatus last = s.get(s.size() - 1);
    assertEquals(JobState.FAILED, last.getState());
    assertTrue(last.getMessage().contains("without an output artifact"), last.getMessage());
  }

  @Test
  void invalidRecipeIsRejectedWithEveryProblem() {
    String bad = "name: bad\nstages:\n  - quantize: { method: fp8, bits: 4 }\n  - publish: {}\n";
    t.submit("job-5", MODEL, bad);
    assertTrue(t.drainRequests().isEmpty(), "a rejected job requests nothing");
    JobStatus rejected = t.status.readValue();
    assertTrue(t.status.isEmpty());
    assertEquals(JobState.REJECTED, rejected.getState());
    assertEquals(0, rejected.getTotalSteps());
    assertNull(rejected.getStage());
    assertTrue(rejected.getMessage().contains("stages[0].quantize.bits"), rejected.getMessage());
    assertTrue(rejected.getMessage().contains("stages[1].publish"), rejected.getMessage());
    assertEquals(JobState.REJECTED, t.store().get("job-5").state());

    t.submit("job-5", MODEL, demoRecipe);
    assertEquals("ingestion", onlyRequest().getStage(), "a rejected job's id can be reused");
    assertEquals(JobState.RUNNING, t.store().get("job-5").state());
  }

  @Test
  void badModelUriIsRejected() {
    t.submit("job-6", "/home/me/model", "name: f\nstages:\n  - factorize: { ratio: 0.7 }\n");
    JobStatus rejected = t.status.readValue();
    assertEquals(JobState.REJECTED, rejected.getState());
    assertTrue(rejected.getMessage().contains("modelUri: expected s3://"), rejected.getMessage());
    assertFalse(rejected.getMessage().contains("not supported yet"), rejected.getMessage());
    assertTrue(t.drainRequests().isEmpty());

    t.submit("job-6r", MODEL, "name: f\nstages:\n  - factorize: { rank: 8 }\n");
    JobStatus rank = t.status.readValue();
    assertEquals(JobState.REJECTED, rank.getState());
    assertTrue(
        rank.getMessage().contains("stages[0].factorize: not supported yet: factorize rank=8"),
        rank.getMessage());
    assertTrue(t.drainRequests().isEmpty());
  }

  @Test
  void aFactorizeStepIsRoutedToTheFactorizationTopic() {
    String recipe =
        "name: f\nstages:\n  - factorize: { method: svd_llm, ratio: 0.7 }\n"
            + "  - evaluate: { kl: true }\n  - publish: {}\n";
    t.submit("job-f", MODEL, recipe);
    t.complete(onlyRequest(), artifact("b", 1000));
    List<StageRequested> factorize = t.requests.get("factorize").readValuesToList();
    assertEquals(
        1, factorize.size(), "one request on " + Topics.stageRequested("factorize").name());
    StageRequested r = factorize.get(0);
    assertEquals("factorize", r.getStage());
    assertEquals(1, r.getStep());
    assertTrue(r.getParamsJson().contains("\"ratio\":0.7"), r.getParamsJson());
    assertTrue(r.getParamsJson().contains("\"method\":\"svd_llm\""), r.getParamsJson());
    assertTrue(t.drainRequests().isEmpty(), "no other stage was asked");

    t.complete(r, artifact("f", 600));
    assertEquals("evaluate", onlyRequest().getStage());
  }

  @Test
  void jobsAreIndependent() {
    t.submit("a", MODEL, demoRecipe);
    t.submit("b", MODEL, demoRecipe);
    List<StageRequested> r = t.drainRequests();
    assertEquals(List.of("a", "b"), r.stream().map(StageRequested::getJobId).toList());
    t.fail(r.get(0), "broken checkpoint");
    t.complete(r.get(1), artifact("b", 10));
    assertEquals(JobState.FAILED, t.store().get("a").state());
    assertEquals(JobState.RUNNING, t.store().get("b").state());
    assertEquals("prune", onlyRequest().getStage());
  }

  @Test
  void retriableFailuresAreRequestedAgainUpToMaxAttempts() {
    t.submit("job-7", MODEL, demoRecipe);
    t.complete(onlyRequest(), artifact("b", 1000));
    StageRequested first = onlyRequest();
    t.status.readValuesToList();

    t.fail(first, "S3 unavailable", true);
    StageRequested second = onlyRequest();
    assertEquals(1, second.getStep());
    assertEquals(2, second.getAttempt());
    assertEquals(first.getInput(), second.getInput());
    JobStatus retrying = t.status.readValue();
    assertEquals(JobState.RUNNING, retrying.getState());
    assertTrue(retrying.getMessage().contains("attempt 2 of 3"), retrying.getMessage());
    assertTrue(retrying.getMessage().contains("S3 unavailable"), retrying.getMessage());

    t.fail(first, "late duplicate of attempt 1's failure", true);
    assertTrue(t.drainRequests().isEmpty(), "a failure of an older attempt is stale");

    t.fail(second, "S3 unavailable", true);
    StageRequested third = onlyRequest();
    assertEquals(3, third.getAttempt());
    t.status.readValuesToList();
    t.fail(third, "S3 still unavailable", true);
    assertTrue(t.drainRequests().isEmpty(), "no fourth attempt");
    JobStatus failed = t.status.readValue();
    assertEquals(JobState.FAILED, failed.getState());
    assertTrue(failed.getMessage().contains("S3 still unavailable"), failed.getMessage());
    assertTrue(failed.getMessage().contains("attempt 3"), failed.getMessage());
  }

  /** Issue 8: a cancelled job ends CANCELLED and nothing later moves it on. */
  @Test
  void aCancelledJobEndsCancelledAndLateAnswersChangeNothing() {
    t.submit("job-c", MODEL, demoRecipe);
    t.complete(onlyRequest(), artifact("b", 1000));
    StageRequested running = onlyRequest();
    t.status.readValuesToList();
    t.cancel("job-c", "wrong model");
    JobStatus cancelled = t.status.readValue();
    assertEquals(JobState.CANCELLED, cancelled.getState());
    assertEquals(
        "cancelled by test: wrong model (during step 1, " + running.getStage() + ")",
        cancelled.getMessage());
    t.complete(running, artifact("c", 900));
    t.fail(running, "late", true);
    t.cancel("job-c", "twice");
    assertTrue(t.drainRequests().isEmpty());
    assertTrue(t.status.readValuesToList().isEmpty());
    assertEquals(JobState.CANCELLED, t.store().get("job-c").state());
  }

  /** A job produced straight to Kafka meets the same source policy as one sent over HTTP. */
  @Test
  void aSubmissionNamingAForbiddenSourceIsRejectedWhicheverWayItCame(@TempDir Path dir) {
    try (TopologyFixture strict =
        new TopologyFixture(dir, SourcePolicy.parse(dir.resolve("models").toString(), "data"))) {
      strict.submit("job-etc", "file:///etc/", demoRecipe);
      JobStatus rejected = strict.status.readValuesToList().get(0);
      assertEquals(JobState.REJECTED, rejected.getState());
      assertTrue(rejected.getMessage().contains("/etc"), rejected.getMessage());
      strict.submit(
          "job-passwd",
          "s3://data/models/m/",
          "name: p\nstages:\n  - prune: { method: wanda, sparsity: 0.5 }\n"
              + "calibration: { dataset: file:///etc/passwd, samples: 4, seq_len: 32 }\n");
      JobStatus refused = strict.status.readValuesToList().get(0);
      assertEquals(JobState.REJECTED, refused.getState());
      assertTrue(refused.getMessage().contains("passwd"), refused.getMessage());
      assertTrue(strict.drainRequests().isEmpty());
    }
  }

  /** Issue 8: a recipe above the limits is rejected before anything runs. */
  @Test
  void aResourceBombIsRejectedWithTheLimitItBreaks() {
    t.submit(
        "job-bomb",
        MODEL,
        "name: bomb\nstages:\n  - prune: { method: wanda, sparsity: 0.5 }\n"
            + "calibration: { dataset: builtin:europarl, samples: 1000000000, seq_len: 64 }\n");
    JobStatus rejected = t.status.readValuesToList().get(0);
    assertEquals(JobState.REJECTED, rejected.getState());
    assertTrue(
        rejected
            .getMessage()
            .contains("calibration.samples: 1000000000 is above the limit of 4096"),
        rejected.getMessage());
    assertTrue(t.drainRequests().isEmpty());
  }

  @Test
  void aRetriedStepThatCompletesMovesOn() {
    t.submit("job-8", MODEL, demoRecipe);
    StageRequested first = onlyRequest();
    t.fail(first, "worker lost", true);
    StageRequested second = onlyRequest();
    assertEquals(2, second.getAttempt());
    t.complete(second, artifact("b", 1000));
    StageRequested prune = onlyRequest();
    assertEquals("prune", prune.getStage());
    assertEquals(1, prune.getAttempt());
    assertEquals(2, t.store().get("job-8").steps().get(0).attempt());
  }

  @Test
  void nonRetriableFailureFailsAtOnce() {
    t.submit("job-9", MODEL, demoRecipe);
    t.fail(onlyRequest(), "pickle files are never loaded: model.bin", false);
    assertTrue(t.drainRequests().isEmpty());
    assertEquals(JobState.FAILED, t.store().get("job-9").state());
  }

  @Test
  void submissionKeyedByAnythingButTheJobIdIsRejectedAndNotStored() {
    t.submitted.pipeInput(
        "other-key",
        dev.compactor.events.JobSubmitted.newBuilder()
            .setJobId("job-10")
            .setSubmittedAtMs(1)
            .setModelUri(MODEL)
            .setRecipeYaml(demoRecipe)
            .build());
    JobStatus rejected = t.status.readValue();
    assertEquals(JobState.REJECTED, rejected.getState());
    assertTrue(rejected.getMessage().contains("\"other-key\""), rejected.getMessage());
    assertTrue(t.drainRequests().isEmpty());
    assertNull(t.store().get("job-10"));
  }
}
