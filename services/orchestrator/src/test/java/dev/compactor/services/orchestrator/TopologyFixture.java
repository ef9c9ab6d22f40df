package dev.compactor.services.orchestrator;

import dev.compactor.core.recipe.RecipeLimits;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageRequested;
import dev.compactor.runtime.SourcePolicy;
import dev.compactor.schemas.Topics;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.state.KeyValueStore;

/** The orchestrator topology in a TopologyTestDriver, with typed input and output topics. */
final class TopologyFixture implements AutoCloseable {

  final InMemorySchemaRegistry registry = new InMemorySchemaRegistry();
  final TopologyTestDriver driver;
  final TestInputTopic<String, JobSubmitted> submitted;
  final TestInputTopic<String, StageCompleted> completed;
  final TestInputTopic<String, StageFailed> failed;
  final TestInputTopic<String, JobCancelRequested> cancels;
  final TestOutputTopic<String, JobStatus> status;
  final Map<String, TestOutputTopic<String, StageRequested>> requests = new LinkedHashMap<>();

  TopologyFixture(Path stateDir) {
    this(stateDir, SourcePolicy.UNRESTRICTED);
  }

  TopologyFixture(Path stateDir, SourcePolicy sources) {
    StreamsBuilder builder = new StreamsBuilder();
    JobTopology.build(
        builder, registry, JobTopology.DEFAULT_MAX_ATTEMPTS, RecipeLimits.DEFAULTS, sources);
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "orchestrator-test");
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    driver = new TopologyTestDriver(builder.build(), props);
    StringSerializer keys = new StringSerializer();
    submitted =
        driver.createInputTopic(
            Topics.JOBS_SUBMITTED.name(),
            keys,
            Topics.JOBS_SUBMITTED.valueSerde(registry).serializer());
    completed =
        driver.createInputTopic(
            Topics.STAGE_COMPLETED.name(),
            keys,
            Topics.STAGE_COMPLETED.valueSerde(registry).serializer());
    failed =
        driver.createInputTopic(
            Topics.STAGE_FAILED.name(),
            keys,
            Topics.STAGE_FAILED.valueSerde(registry).serializer());
    cancels =
        driver.createInputTopic(
            Topics.JOBS_CANCEL.name(), keys, Topics.JOBS_CANCEL.valueSerde(registry).serializer());
    status =
        driver.createOutputTopic(
            Topics.JOBS_STATUS.name(),
            new StringDeserializer(),
            Topics.JOBS_STATUS.valueSerde(registry).deserializer());
    for (String stage : Topics.STAGES) {
      requests.put(
          stage,
          driver.createOutputTopic(
              Topics.stageRequested(stage).name(),
              new StringDeserializer(),
              Topics.stageRequested(stage).valueSerde(registry).deserializer()));
    }
  }

  KeyValueStore<String, JobRecord> store() {
    return driver.getKeyValueStore(JobTopology.STORE);
  }

  void submit(String jobId, String modelUri, String recipeYaml) {
    submitted.pipeInput(
        jobId,
        JobSubmitted.newBuilder()
            .setJobId(jobId)
            .setSubmittedAtMs(1_000)
            .setModelUri(modelUri)
            .setRecipeYaml(recipeYaml)
            .setSubmitter("test")
            .build());
  }

  void cancel(String jobId, String reason) {
    cancels.pipeInput(
        jobId,
        JobCancelRequested.newBuilder()
            .setJobId(jobId)
            .setReason(reason)
            .setRequestedBy("test")
            .setRequestedAtMs(3_000)
            .build());
  }

  void complete(StageRequested request, ArtifactRef output) {
    completed.pipeInput(
        request.getJobId(),
        StageCompleted.newBuilder()
            .setJobId(request.getJobId())
            .setStep(request.getStep())
            .setStage(request.getStage())
            .setOutput(output)
            .setMetrics(Map.of("seconds", 1.5))
            .setDurationMs(1_500)
            .setWorker("worker-" + request.getStage())
            .setAttempt(request.getAttempt())
            .setCompletedAtMs(2_000)
            .build());
  }

  void fail(StageRequested request, String reason) {
    fail(request, reason, false);
  }

  void fail(StageRequested request, String reason, boolean retriable) {
    failed.pipeInput(
        request.getJobId(),
        StageFailed.newBuilder()
            .setJobId(request.getJobId())
            .setStep(request.getStep())
            .setStage(request.getStage())
            .setReason(reason)
            .setErrorType("java.lang.IllegalStateException")
            .setRetriable(retriable)
            .setWorker("worker-" + request.getStage())
            .setAttempt(request.getAttempt())
            .setFailedAtMs(2_000)
            .build());
  }

  /** Every StageRequested emitted since the last call, across all stage topics. */
  List<StageRequested> drainRequests() {
    return requests.values().stream().flatMap(t -> t.readValuesToList().stream()).toList();
  }

  static ArtifactRef artifact(String name, long size) {
    return ArtifactRef.newBuilder()
        .setUri("s3://compactor-artifacts/artifacts/" + name + "/")
        .setSha256(name.repeat(64).substring(0, 64))
        .setSizeBytes(size)
        .setFormat("hf-safetensors")
        .build();
  }

  @Override
  public void close() {
    driver.close();
  }
}
