package dev.compactor.services.orchestrator;

import dev.compactor.core.recipe.StageKind;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.JobState;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything the orchestrator knows about one job: the plan (ingestion, then the recipe's stages),
 * where it stands, each step's input and output artifacts, and the history of its transitions. It
 * is the value of the orchestrator's state store (as JSON) and the body of {@code GET /jobs/{id}}.
 *
 * <p>Mutable on purpose: the processor loads it, applies one event, and writes it back in the same
 * exactly-once transaction.
 */
public final class JobRecord {

  /** Stage name of step 0, in the events' vocabulary. */
  public static final String INGESTION = StageKind.INGESTION_SERVICE;

  /** Lifecycle of one step. */
  public enum StepStatus {
    PENDING,
    REQUESTED,
    COMPLETED,
    FAILED
  }

  /** A model artifact in S3, as referenced by events (never the tensors themselves). */
  public record Artifact(String uri, String sha256, long sizeBytes, String format) {

    static Artifact of(ArtifactRef ref) {
      return ref == null
          ? null
          : new Artifact(ref.getUri(), ref.getSha256(), ref.getSizeBytes(), ref.getFormat());
    }

    ArtifactRef toRef() {
      return ArtifactRef.newBuilder()
          .setUri(uri)
          .setSha256(sha256)
          .setSizeBytes(sizeBytes)
          .setFormat(format)
          .build();
    }
  }

  /** One entry of the job's history: a state change or a step moving on. */
  public record Transition(long atMs, JobState state, int step, String stage, String message) {}

  /** One step of the plan; step 0 is ingestion. */
  public static final class Step {
    private int index;
    private String stage;
    private String paramsJson;
    private StepStatus status = StepStatus.PENDING;
    private int attempt;
    private Artifact input;
    private Artifact output;
    private Map<String, Double> metrics = new LinkedHashMap<>();
    private String worker;
    private Long durationMs;
    private Long requestedAtMs;
    private Long finishedAtMs;

    Step() {}

    Step(int index, String stage, String paramsJson) {
      this.index = index;
      this.stage = stage;
      this.paramsJson = paramsJson;
    }

    public int index() {
      return index;
    }

    /** Stage kind in the events' vocabulary: ingestion, prune, quantize, ... */
    public String stage() {
      return stage;
    }

    public String paramsJson() {
      return paramsJson;
    }

    public StepStatus status() {
      return status;
    }

    /** How many times the step was requested: 0 before its first request, 1 after, ... */
    public int attempt() {
      return attempt;
    }

    public Artifact input() {
      return input;
    }

    public Artifact output() {
      return output;
    }

    public Map<String, Double> metrics() {
      return metrics;
    }

    public String worker() {
      return worker;
    }

    /** Marks the step requested once more and returns the attempt number. */
    int requested(Artifact input, long atMs) {
      this.attempt++;
      this.input = input;
      this.status = StepStatus.REQUESTED;
      this.requestedAtMs = atMs;
      return attempt;
    }

    void completed(
        Artifact output, Map<String, Double> metrics, String worker, long durationMs, long atMs) {
      this.output = output;
      this.metrics = new LinkedHashMap<>(metrics);
      this.worker = worker;
      this.durationMs = durationMs;
      this.finishedAtMs = atMs;
      this.status = StepStatus.COMPLETED;
    }

    void failed(String worker, long atMs) {
      this.worker = worker;
      this.finishedAtMs = atMs;
      this.status = StepStatus.FAILED;
    }
  }

  private String jobId;
  private JobState state;
  private int currentStep;
  private String message;
  private String modelUri;
  private String recipeName;
  private String recipeYaml;
  private String calibrationUri;
  private String submitter;
  private long submittedAtMs;
  private long updatedAtMs;
  private Artifact baseline;
  private List<Step> steps = new ArrayList<>();
  private List<Transition> history = new ArrayList<>();

  JobRecord() {}

  JobRecord(
      String jobId,
      String modelUri,
      String recipeName,
      String recipeYaml,
      String calibrationUri,
      String submitter,
      long submittedAtMs) {
    this.jobId = jobId;
    this.modelUri = modelUri;
    this.recipeName = recipeName;
    this.recipeYaml = recipeYaml;
    this.calibrationUri = calibrationUri;
    this.submitter = submitter;
    this.submittedAtMs = submittedAtMs;
  }

  public String jobId() {
    return jobId;
  }

  public JobState state() {
    return state;
  }

  /** Index of the step running, or the last one run when the job has ended. */
  public int currentStep() {
    return currentStep;
  }

  public String message() {
    return message;
  }

  public String modelUri() {
    return modelUri;
  }

  public String recipeName() {
    return recipeName;
  }

  public String recipeYaml() {
    return recipeYaml;
  }

  public String calibrationUri() {
    return calibrationUri;
  }

  public String submitter() {
    return submitter;
  }

  public long updatedAtMs() {
    return updatedAtMs;
  }

  /** The ingested, uncompressed model every metric is compared with; null before ingestion. */
  public Artifact baseline() {
    return baseline;
  }

  public List<Step> steps() {
    return steps;
  }

  public List<Transition> history() {
    return history;
  }

  /** True when no further event can change the job. */
  public boolean isTerminal() {
    return state == JobState.SUCCEEDED
        || state == JobState.FAILED
        || state == JobState.REJECTED
        || state == JobState.CANCELLED;
  }

  /** The stage of the current step, or null when the job has no steps (rejected). */
  public String currentStage() {
    return currentStep < steps.size() ? steps.get(currentStep).stage() : null;
  }

  /**
   * The newest model the job has produced: the input of the next step. Only ingestion and
   * compression steps make models; evaluate and publish pass theirs through.
   */
  Artifact latestModel() {
    for (int i = steps.size() - 1; i >= 0; i--) {
      Step s = steps.get(i);
      if (s.status == StepStatus.COMPLETED && s.output != null && producesModel(s.stage)) {
        return s.output;
      }
    }
    return null;
  }

  /** Whether steps of {@code stage} must output a model (ingestion and compression stages). */
  static boolean producesModel(String stage) {
    return INGESTION.equals(stage)
        || StageKind.fromRecipeKey(stage).map(StageKind::isCompression).orElse(false);
  }

  void addStep(Step step) {
    steps.add(step);
  }

  void baseline(Artifact baseline) {
    this.baseline = baseline;
  }

  /** Moves the job to {@code state} at {@code step} and appends the transition to the history. */
  void transition(JobState state, int step, String message, long atMs) {
    this.state = state;
    this.currentStep = step;
    this.message = message;
    this.updatedAtMs = atMs;
    history.add(new Transition(atMs, state, step, currentStage(), message));
  }
}
