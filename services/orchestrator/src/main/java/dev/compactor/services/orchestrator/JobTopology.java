package dev.compactor.services.orchestrator;

import dev.compactor.core.recipe.RecipeLimits;
import dev.compactor.events.JobStatus;
import dev.compactor.events.StageRequested;
import dev.compactor.runtime.SourcePolicy;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.util.Set;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

/**
 * The orchestrator's Kafka Streams topology: job submissions and stage outcomes (all keyed by job
 * id, so one job's events meet on one partition) go through {@link JobProcessor}, which keeps the
 * job state store and emits each step's {@code StageRequested} to that stage's own topic and every
 * status change to {@code compactor.jobs.status}.
 *
 * <pre>
 * jobs.submitted ─┐
 * stage.completed ┼─▶ JobProcessor [job-state] ─┬─▶ compactor.stage.&lt;stage&gt;.requested
 * stage.failed ───┘                              └─▶ compactor.jobs.status
 * </pre>
 */
public final class JobTopology {

  /** Name of the persistent job-state store (job id → {@link JobRecord}). */
  public static final String STORE = "job-state";

  /** Stages a service exists for; a recipe using any other is rejected rather than left hanging. */
  public static final Set<String> SERVED_STAGES =
      Set.of("ingestion", "prune", "quantize", "distill", "factorize", "evaluate", "publish");

  private JobTopology() {}

  /** Requests per step before a retriable failure fails the job. */
  public static final int DEFAULT_MAX_ATTEMPTS = 3;

  /**
   * {@link #build(StreamsBuilder, SchemaRegistryClient, int)} with {@link #DEFAULT_MAX_ATTEMPTS}.
   */
  public static void build(StreamsBuilder builder, SchemaRegistryClient registry) {
    build(
        builder, registry, DEFAULT_MAX_ATTEMPTS, RecipeLimits.DEFAULTS, SourcePolicy.UNRESTRICTED);
  }

  /**
   * Adds the topology to {@code builder}, with Avro serdes bound to {@code registry}; a step whose
   * worker reports a retriable failure is requested up to {@code maxAttempts} times; recipes that
   * break {@code limits}, or name a model or calibration source {@code sources} refuses, are
   * rejected.
   */
  public static void build(
      StreamsBuilder builder,
      SchemaRegistryClient registry,
      int maxAttempts,
      RecipeLimits limits,
      SourcePolicy sources) {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be >= 1, found " + maxAttempts);
    }
    builder.addStateStore(
        Stores.keyValueStoreBuilder(
            Stores.persistentKeyValueStore(STORE), Serdes.String(), JobJson.serde()));

    KStream<String, SpecificRecord> submitted =
        source(builder, Topics.JOBS_SUBMITTED, registry, "submitted");
    KStream<String, SpecificRecord> completed =
        source(builder, Topics.STAGE_COMPLETED, registry, "completed");
    KStream<String, SpecificRecord> failed =
        source(builder, Topics.STAGE_FAILED, registry, "failed");

    KStream<String, SpecificRecord> cancels =
        source(builder, Topics.JOBS_CANCEL, registry, "cancel");

    KStream<String, SpecificRecord> out =
        submitted
            .merge(completed, Named.as("merge-completed"))
            .merge(failed, Named.as("merge-failed"))
            .merge(cancels, Named.as("merge-cancel"))
            .process(
                () -> new JobProcessor(maxAttempts, limits, sources),
                Named.as("job-processor"),
                STORE);

    out.split(Named.as("out-"))
        .branch(
            (k, v) -> v instanceof StageRequested,
            Branched.withConsumer(
                requests ->
                    requests
                        .mapValues(v -> (StageRequested) v, Named.as("as-stage-requested"))
                        .to(
                            (k, v, ctx) -> Topics.stageRequested(v.getStage()).name(),
                            Produced.with(
                                Serdes.String(),
                                Topics.stageRequested("ingestion").valueSerde(registry))),
                "requests"))
        .branch(
            (k, v) -> v instanceof JobStatus,
            Branched.withConsumer(
                statuses ->
                    statuses
                        .mapValues(v -> (JobStatus) v, Named.as("as-job-status"))
                        .to(
                            Topics.JOBS_STATUS.name(),
                            Produced.with(
                                Topics.JOBS_STATUS.keySerde(),
                                Topics.JOBS_STATUS.valueSerde(registry))),
                "statuses"))
        .noDefaultBranch();
  }

  private static <V extends SpecificRecord> KStream<String, SpecificRecord> source(
      StreamsBuilder builder, Topic<String, V> topic, SchemaRegistryClient registry, String name) {
    return builder.stream(
            topic.name(),
            Consumed.with(topic.keySerde(), topic.valueSerde(registry)).withName("in-" + name))
        .mapValues(v -> (SpecificRecord) v, Named.as("as-event-" + name));
  }
}
