package dev.compactor.schemas;

import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.ModelIngested;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageProgress;
import dev.compactor.events.StageRequested;
import dev.compactor.schemas.serde.AvroSerde;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.serialization.Serdes;

/**
 * Every Kafka topic of Compactor, each bound to its key and value serdes and its creation settings.
 * Code refers to topics only through these constants; nobody spells a topic name twice.
 *
 * <p>All keys are the job id (String), so every event of a job lands on the same partition and is
 * seen in order. Each stage has its own request topic, so each stage service is its own consumer
 * group on its own topic and scales independently ({@link #stageRequested(String)}).
 */
public final class Topics {

  static {
    // Event builders deep-copy nested records through Avro's class lookup, so trust is needed
    // before
    // the first event is even built, not only when a serde is first used.
    AvroClassTrust.trustCompactorClasses();
  }

  /** The stage kinds, in recipe vocabulary; {@code ingestion} is always step 0 of a job. */
  public static final List<String> STAGES =
      List.of("ingestion", "prune", "quantize", "distill", "factorize", "evaluate", "publish");

  private static final String DELETE = TopicConfig.CLEANUP_POLICY_DELETE;
  private static final String COMPACT = TopicConfig.CLEANUP_POLICY_COMPACT;
  private static final String WEEK_MS = Long.toString(7L * 24 * 3600 * 1000);
  private static final String FOREVER = "-1";

  /** Jobs submitted by users (CLI, REST or any producer). */
  public static final Topic<String, JobSubmitted> JOBS_SUBMITTED =
      avro(
          "compactor.jobs.submitted",
          "JobSubmitted: a user asked to compress a model with a recipe",
          JobSubmitted.class,
          6,
          DELETE,
          FOREVER);

  /** Stage outcomes: one per finished step, from every stage service to the orchestrator. */
  public static final Topic<String, StageCompleted> STAGE_COMPLETED =
      avro(
          "compactor.stage.completed",
          "StageCompleted: a stage service finished one step and stored its output artifact",
          StageCompleted.class,
          6,
          DELETE,
          WEEK_MS);

  /** Stage failures, from every stage service to the orchestrator. */
  public static final Topic<String, StageFailed> STAGE_FAILED =
      avro(
          "compactor.stage.failed",
          "StageFailed: a stage service could not complete one step (reason, retriable)",
          StageFailed.class,
          6,
          DELETE,
          WEEK_MS);

  /** Details of ingested baseline models. */
  public static final Topic<String, ModelIngested> MODELS_INGESTED =
      avro(
          "compactor.models.ingested",
          "ModelIngested: a checkpoint was validated and stored as the job's baseline artifact",
          ModelIngested.class,
          6,
          DELETE,
          FOREVER);

  /** Public: evaluation results of compressed models against their baselines. */
  public static final Topic<String, EvaluationCompleted> EVALUATION_COMPLETED =
      avro(
          "compactor.evaluation.completed",
          "EvaluationCompleted (public): quality, size and speed of a compressed model vs. baseline",
          EvaluationCompleted.class,
          6,
          DELETE,
          FOREVER);

  /** Public: published models; compacted so it keeps the latest publication of every job. */
  public static final Topic<String, ModelReady> MODELS_READY =
      avro(
          "compactor.models.ready",
          "ModelReady (public): a compressed model passed its gates and was published",
          ModelReady.class,
          6,
          COMPACT,
          null);

  /** The current status of every job; compacted, so it is a table of job id to latest status. */
  public static final Topic<String, JobStatus> JOBS_STATUS =
      avro(
          "compactor.jobs.status",
          "JobStatus: the orchestrator's latest view of each job (state, step, message)",
          JobStatus.class,
          6,
          COMPACT,
          null);

  /** Users' requests to cancel a job, to the orchestrator and every worker. */
  public static final Topic<String, JobCancelRequested> JOBS_CANCEL =
      avro(
          "compactor.jobs.cancel",
          "JobCancelRequested: a user asked to cancel a job",
          JobCancelRequested.class,
          6,
          DELETE,
          WEEK_MS);

  /**
   * Progress of running steps, every few seconds, for watchers (informative, not transactional).
   */
  public static final Topic<String, StageProgress> STAGE_PROGRESS =
      avro(
          "compactor.stage.progress",
          "StageProgress: how far a running step has got (fraction, message), every few seconds",
          StageProgress.class,
          6,
          DELETE,
          Long.toString(24L * 3600 * 1000));

  /**
   * Records no consumer could process (undecodable, unknown schema id), copied byte for byte with
   * headers saying where they came from and why they failed.
   */
  public static final Topic<String, byte[]> DEADLETTER =
      new Topic<>(
          "compactor.deadletter",
          "raw bytes of records that could not be processed, with origin and error in headers",
          Serdes.String(),
          registry -> Serdes.ByteArray(),
          null,
          1,
          Map.of(
              TopicConfig.CLEANUP_POLICY_CONFIG, DELETE, TopicConfig.RETENTION_MS_CONFIG, FOREVER));

  private static final Map<String, Topic<String, StageRequested>> STAGE_REQUESTED = stageTopics();

  private Topics() {}

  /**
   * The request topic of one stage kind, {@code compactor.stage.<stage>.requested}.
   *
   * @throws IllegalArgumentException when {@code stage} is not one of {@link #STAGES}
   */
  public static Topic<String, StageRequested> stageRequested(String stage) {
    Topic<String, StageRequested> topic = STAGE_REQUESTED.get(stage);
    if (topic == null) {
      throw new IllegalArgumentException(
          "unknown stage '" + stage + "'; expected one of " + STAGES);
    }
    return topic;
  }

  /** The consumer group of the workers of one stage kind. */
  public static String stageConsumerGroup(String stage) {
    stageRequested(stage);
    return "compactor-stage-" + stage;
  }

  /** Every topic, for creating them all (the stack, tests, deployment). */
  public static List<Topic<String, ?>> all() {
    List<Topic<String, ?>> all = new ArrayList<>();
    all.add(JOBS_SUBMITTED);
    all.addAll(STAGE_REQUESTED.values());
    all.add(STAGE_COMPLETED);
    all.add(STAGE_FAILED);
    all.add(MODELS_INGESTED);
    all.add(EVALUATION_COMPLETED);
    all.add(MODELS_READY);
    all.add(JOBS_STATUS);
    all.add(JOBS_CANCEL);
    all.add(STAGE_PROGRESS);
    all.add(DEADLETTER);
    return List.copyOf(all);
  }

  private static Map<String, Topic<String, StageRequested>> stageTopics() {
    Map<String, Topic<String, StageRequested>> topics = new LinkedHashMap<>();
    for (String stage : STAGES) {
      topics.put(
          stage,
          avro(
              "compactor.stage." + stage + ".requested",
              "StageRequested: the orchestrator asks a " + stage + " worker to run one step",
              StageRequested.class,
              6,
              DELETE,
              WEEK_MS));
    }
    return Collections.unmodifiableMap(topics);
  }

  private static <V extends SpecificRecord> Topic<String, V> avro(
      String name,
      String description,
      Class<V> type,
      int partitions,
      String cleanupPolicy,
      String retentionMs) {
    Map<String, String> configs = new LinkedHashMap<>();
    configs.put(TopicConfig.CLEANUP_POLICY_CONFIG, cleanupPolicy);
    if (retentionMs != null) {
      configs.put(TopicConfig.RETENTION_MS_CONFIG, retentionMs);
    }
    return new Topic<>(
        name,
        description,
        Serdes.String(),
        registry -> AvroSerde.forValues(type, registry),
        SpecificData.get().getSchema(type),
        partitions,
        configs);
  }
}
