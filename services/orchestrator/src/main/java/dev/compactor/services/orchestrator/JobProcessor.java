package dev.compactor.services.orchestrator;

import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.FactorizeParams;
import dev.compactor.core.recipe.InvalidRecipeException;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeLimits;
import dev.compactor.core.recipe.RecipeProblem;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageRequested;
import dev.compactor.runtime.SourcePolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The job state machine. For each job it keeps a {@link JobRecord} in the state store and, on each
 * event, moves the job on by at most one step:
 *
 * <ul>
 *   <li>{@code JobSubmitted}: validate the recipe (REJECTED with every problem, or SUBMITTED) and
 *       request step 0, ingestion.
 *   <li>{@code StageCompleted} for the step in flight: record its output and request the next step
 *       (the previous model as input, the ingested model as baseline), or SUCCEEDED after the last.
 *   <li>{@code StageFailed} for the attempt in flight: a retriable failure (storage down, worker
 *       lost) requests the step again with the next attempt number, up to {@code maxAttempts};
 *       otherwise FAILED with the worker's reason.
 *   <li>{@code JobCancelRequested} for a job that has not ended: CANCELLED, and nothing more is
 *       requested for it; the worker running its step stops it without publishing (workers follow
 *       {@code compactor.jobs.status}). A cancelled job is terminal: a restart never resumes it.
 * </ul>
 *
 * Events for another step or an older attempt, a repeated completion, or a finished job change
 * nothing, so each (job, step, attempt) is requested exactly once: the store update and the emitted
 * events commit in one exactly-once transaction. Emits {@link StageRequested} and {@link JobStatus}
 * records.
 */
final class JobProcessor implements Processor<String, SpecificRecord, String, SpecificRecord> {

  private static final Logger LOG = LoggerFactory.getLogger(JobProcessor.class);

  private final int maxAttempts;
  private final RecipeLimits limits;
  private final SourcePolicy sources;
  private ProcessorContext<String, SpecificRecord> context;
  private KeyValueStore<String, JobRecord> store;

  JobProcessor(int maxAttempts, RecipeLimits limits, SourcePolicy sources) {
    this.maxAttempts = maxAttempts;
    this.limits = limits;
    this.sources = sources;
  }

  /**
   * The first of a job's sources (its model, the recipe's calibration text) that {@code sources}
   * refuses: checked for every submission, whichever way it arrived (HTTP or straight on Kafka).
   */
  static Optional<String> sourceProblem(
      SourcePolicy sources, String modelUri, Optional<Calibration> calibration) {
    Optional<String> model = sources.problem(modelUri);
    return model.isPresent() ? model : calibration.flatMap(c -> sources.problem(c.dataset()));
  }

  @Override
  public void init(ProcessorContext<String, SpecificRecord> context) {
    this.context = context;
    this.store = context.getStateStore(JobTopology.STORE);
  }

  @Override
  public void process(Record<String, SpecificRecord> record) {
    SpecificRecord event = record.value();
    long ts = record.timestamp();
    if (event instanceof JobSubmitted s) {
      if (record.key() == null || !record.key().equals(s.getJobId())) {
        rejectMisKeyed(s, record.key(), ts);
      } else {
        onSubmitted(s, ts);
      }
    } else if (event instanceof StageCompleted c) {
      onCompleted(c, ts);
    } else if (event instanceof StageFailed f) {
      onFailed(f, ts);
    } else if (event instanceof JobCancelRequested c) {
      onCancel(c, ts);
    } else if (event != null) {
      throw new IllegalStateException("unexpected event type " + event.getClass().getName());
    }
  }

  private void onSubmitted(JobSubmitted s, long ts) {
    String jobId = s.getJobId();
    JobRecord existing = store.get(jobId);
    // a rejected job never ran a step, so its id may be reused for a corrected submission
    if (existing != null && existing.state() != JobState.REJECTED) {
      LOG.info("job {}: repeated JobSubmitted ignored ({})", jobId, coordinates());
      return;
    }
    List<String> problems = new ArrayList<>();
    Recipe recipe = null;
    try {
      recipe = Recipe.parse(s.getRecipeYaml());
      limits.check(recipe).stream().map(RecipeProblem::toString).forEach(problems::add);
      sourceProblem(sources, s.getModelUri(), recipe.calibration()).ifPresent(problems::add);
      for (int i = 0; i < recipe.stages().size(); i++) {
        String stage = recipe.stage(i).kind().recipeKey();
        if (!JobTopology.SERVED_STAGES.contains(stage)) {
          problems.add(
              "stages["
                  + i
                  + "]."
                  + stage
                  + ": not supported yet: no "
                  + stage
                  + " service is deployed");
        }
        if (recipe.stage(i).params() instanceof FactorizeParams f) {
          try {
            // rank / rank_ratio validate but nothing implements them
            f.rankRule();
          } catch (UnsupportedOperationException e) {
            problems.add("stages[" + i + "].factorize: " + e.getMessage());
          }
        }
      }
    } catch (InvalidRecipeException e) {
      e.problems().stream().map(RecipeProblem::toString).forEach(problems::add);
    } catch (RuntimeException e) {
      // a validator bug must reject one job, not stop the stream thread that serves every job
      LOG.error("job {}: recipe validation failed unexpectedly ({})", jobId, coordinates(), e);
      problems.add("recipe could not be validated: " + e);
    }
    String modelUri = s.getModelUri();
    if (modelUri == null || !(modelUri.startsWith("s3://") || modelUri.startsWith("file:"))) {
      problems.add(
          "modelUri: expected s3://bucket/prefix/ or file:///path/ but found \"" + modelUri + "\"");
    }

    JobRecord job =
        new JobRecord(
            jobId,
            modelUri,
            recipe == null ? null : recipe.name(),
            s.getRecipeYaml(),
            recipe == null ? null : recipe.calibration().map(c -> c.dataset()).orElse(null),
            s.getSubmitter(),
            s.getSubmittedAtMs());
    if (!problems.isEmpty()) {
      transition(job, JobState.REJECTED, 0, "rejected: " + String.join("; ", problems), ts);
      LOG.info("job {}: rejected ({} problems) ({})", jobId, problems.size(), coordinates());
      store.put(jobId, job);
      return;
    }
    job.addStep(new JobRecord.Step(0, JobRecord.INGESTION, "{}"));
    for (StageSpec spec : recipe.stages()) {
      job.addStep(new JobRecord.Step(job.steps().size(), spec.kind().recipeKey(), spec.toJson()));
    }
    transition(
        job, JobState.SUBMITTED, 0, "accepted recipe " + recipe.name() + ": " + plan(job), ts);
    request(job, 0, ts, "");
    store.put(jobId, job);
  }

  /**
   * Every event of a job must land on one partition, so the key must be the job id; a submission
   * keyed otherwise is rejected without being stored (its partition's store is not the job's).
   */
  private void rejectMisKeyed(JobSubmitted s, String key, long ts) {
    String message =
        "rejected: the record key must be the jobId \""
            + s.getJobId()
            + "\" but found "
            + (key == null ? "no key" : "\"" + key + "\"");
    LOG.warn("job {}: {} ({})", s.getJobId(), message, coordinates());
    JobRecord job =
        new JobRecord(
            s.getJobId(),
            s.getModelUri(),
            null,
            s.getRecipeYaml(),
            null,
            s.getSubmitter(),
            s.getSubmittedAtMs());
    transition(job, JobState.REJECTED, 0, message, ts);
  }

  private void onCompleted(StageCompleted c, long ts) {
    // any attempt's completion is good: the step's output is content-addressed and verified
    JobRecord job = inFlight(c.getJobId(), c.getStep(), c.getStage(), -1, "StageCompleted");
    if (job == null) {
      return;
    }
    int i = c.getStep();
    JobRecord.Step step = job.steps().get(i);
    JobRecord.Artifact output = JobRecord.Artifact.of(c.getOutput());
    step.completed(output, c.getMetrics(), c.getWorker(), c.getDurationMs(), ts);
    if (output == null && JobRecord.producesModel(step.stage())) {
      step.failed(c.getWorker(), ts);
      fail(
          job, i, "step " + i + " (" + step.stage() + ") completed without an output artifact", ts);
    } else {
      if (i == 0) {
        job.baseline(output);
      }
      if (i + 1 < job.steps().size()) {
        request(job, i + 1, ts, "");
      } else {
        transition(
            job, JobState.SUCCEEDED, i, "all " + job.steps().size() + " steps completed", ts);
        LOG.info("job {}: succeeded ({})", job.jobId(), coordinates());
      }
    }
    store.put(job.jobId(), job);
  }

  private void onFailed(StageFailed f, long ts) {
    JobRecord job =
        inFlight(f.getJobId(), f.getStep(), f.getStage(), f.getAttempt(), "StageFailed");
    if (job == null) {
      return;
    }
    int i = f.getStep();
    JobRecord.Step step = job.steps().get(i);
    String reason =
        f.getReason()
            + (f.getErrorType() == null ? "" : " [" + f.getErrorType() + "]")
            + " (attempt "
            + step.attempt()
            + " on "
            + f.getWorker()
            + ")";
    if (f.getRetriable() && step.attempt() < maxAttempts) {
      LOG.warn(
          "job {}: step {} ({}) failed, retrying: {} ({})",
          job.jobId(),
          i,
          step.stage(),
          reason,
          coordinates());
      request(job, i, ts, "after a retriable failure: " + reason);
    } else {
      step.failed(f.getWorker(), ts);
      fail(job, i, "step " + i + " (" + f.getStage() + ") failed: " + reason, ts);
    }
    store.put(job.jobId(), job);
  }

  private void onCancel(JobCancelRequested c, long ts) {
    JobRecord job = store.get(c.getJobId());
    if (job == null || job.isTerminal()) {
      LOG.info(
          "job {}: cancel request ignored: {} ({})",
          c.getJobId(),
          job == null ? "unknown job" : "the job already ended " + job.state(),
          coordinates());
      return;
    }
    int step = job.currentStep();
    String message =
        "cancelled"
            + (c.getRequestedBy() == null ? "" : " by " + c.getRequestedBy())
            + (c.getReason() == null || c.getReason().isBlank() ? "" : ": " + c.getReason())
            + " (during step "
            + step
            + ", "
            + job.currentStage()
            + ")";
    transition(job, JobState.CANCELLED, step, message, ts);
    LOG.info("job {}: {} ({})", job.jobId(), message, coordinates());
    store.put(job.jobId(), job);
  }

  /**
   * The job if this event answers the step in flight (and, for {@code attempt} >= 0, its latest
   * attempt); null (logged) for anything else.
   */
  private JobRecord inFlight(String jobId, int step, String stage, int attempt, String what) {
    JobRecord job = store.get(jobId);
    if (job == null) {
      LOG.warn("job {}: {} for an unknown job ignored ({})", jobId, what, coordinates());
      return null;
    }
    if (job.isTerminal()) {
      LOG.info(
          "job {}: {} after the job ended ({}) ignored ({})",
          jobId,
          what,
          job.state(),
          coordinates());
      return null;
    }
    boolean current =
        step == job.currentStep()
            && job.steps().get(step).status() == JobRecord.StepStatus.REQUESTED
            && job.steps().get(step).stage().equals(stage)
            && (attempt < 0 || attempt == job.steps().get(step).attempt());
    if (!current) {
      LOG.info(
          "job {}: duplicate or stale {} for step {} ({}, attempt {}) ignored; step {} ({}) is in"
              + " flight ({})",
          jobId,
          what,
          step,
          stage,
          attempt,
          job.currentStep(),
          job.currentStage(),
          coordinates());
      return null;
    }
    return job;
  }

  /** Requests step {@code i}: the newest model as input, the ingested one as baseline. */
  private void request(JobRecord job, int i, long ts, String why) {
    JobRecord.Step step = job.steps().get(i);
    JobRecord.Artifact input = i == 0 ? null : job.latestModel();
    int attempt = step.requested(input, ts);
    StageRequested request =
        StageRequested.newBuilder()
            .setJobId(job.jobId())
            .setStep(i)
            .setStage(step.stage())
            .setParamsJson(step.paramsJson())
            .setInput(input == null ? null : input.toRef())
            .setBaseline(i == 0 || job.baseline() == null ? null : job.baseline().toRef())
            .setModelUri(i == 0 ? job.modelUri() : null)
            .setCalibrationUri(job.calibrationUri())
            .setRecipeYaml(job.recipeYaml())
            .setAttempt(attempt)
            .setRequestedAtMs(ts)
            .build();
    context.forward(new Record<>(job.jobId(), request, ts));
    String message =
        "running step "
            + i
            + " of "
            + job.steps().size()
            + ": "
            + step.stage()
            + (attempt > 1 ? ", attempt " + attempt + " of " + maxAttempts + " " + why : "");
    transition(job, JobState.RUNNING, i, message, ts);
    LOG.info(
        "job {}: requested step {} ({}) attempt {} ({})",
        job.jobId(),
        i,
        step.stage(),
        attempt,
        coordinates());
  }

  private void fail(JobRecord job, int step, String message, long ts) {
    transition(job, JobState.FAILED, step, message, ts);
    LOG.warn("job {}: failed: {} ({})", job.jobId(), message, coordinates());
  }

  /** Applies a transition and emits the matching JobStatus. */
  private void transition(JobRecord job, JobState state, int step, String message, long ts) {
    job.transition(state, step, message, ts);
    JobStatus status =
        JobStatus.newBuilder()
            .setJobId(job.jobId())
            .setState(state)
            .setStep(step)
            .setTotalSteps(job.steps().size())
            .setStage(job.currentStage())
            .setMessage(message)
            .setUpdatedAtMs(ts)
            .build();
    context.forward(new Record<>(job.jobId(), status, ts));
  }

  private static String plan(JobRecord job) {
    return job.steps().stream().map(JobRecord.Step::stage).collect(Collectors.joining(" -> "));
  }

  private String coordinates() {
    return context
        .recordMetadata()
        .map(m -> m.topic() + "-" + m.partition() + "@" + m.offset())
        .orElse("no source record");
  }
}
