package dev.compactor.schemas;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.events.ModelIngested;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageRequested;
import java.util.List;
import java.util.Map;
import org.apache.avro.specific.SpecificRecord;

/** One fully populated instance of every event, for round-trip tests. */
public final class SampleEvents {
  private SampleEvents() {}

  public static ArtifactRef artifact(String hash) {
    return ArtifactRef.newBuilder()
        .setUri("s3://compactor/artifacts/" + hash + "/")
        .setSha256(hash)
        .setSizeBytes(123_456_789L)
        .setFormat("hf-safetensors")
        .build();
  }

  public static List<SpecificRecord> all() {
    ArtifactRef base = artifact("aa".repeat(32));
    ArtifactRef pruned = artifact("bb".repeat(32));
    return List.of(
        JobSubmitted.newBuilder()
            .setJobId("job-1")
            .setSubmittedAtMs(1_700_000_000_000L)
            .setModelUri("s3://models/tiny/")
            .setRecipeYaml("name: wanda50\nstages:\n  - prune: { method: wanda, sparsity: 0.5 }\n")
            .setSubmitter("alice")
            .build(),
        ModelIngested.newBuilder()
            .setJobId("job-1")
            .setArtifact(base)
            .setArchitecture("LlamaForCausalLM")
            .setModelType("llama")
            .setParameterCount(1_100_048_384L)
            .setDtype("BF16")
            .setSizeBytes(2_200_119_864L)
            .setFileHashes(Map.of("model.safetensors", "cc".repeat(32)))
            .setIngestedAtMs(1_700_000_001_000L)
            .build(),
        StageRequested.newBuilder()
            .setJobId("job-1")
            .setStep(1)
            .setStage("prune")
            .setParamsJson("{\"method\":\"wanda\",\"sparsity\":0.5}")
            .setInput(base)
            .setBaseline(base)
            .setCalibrationUri("s3://data/calib.txt")
            .setRecipeYaml("name: wanda50")
            .setAttempt(1)
            .setRequestedAtMs(1_700_000_002_000L)
            .build(),
        StageCompleted.newBuilder()
            .setJobId("job-1")
            .setStep(1)
            .setStage("prune")
            .setOutput(pruned)
            .setMetrics(Map.of("sparsity", 0.5))
            .setDurationMs(42_000L)
            .setWorker("host-a/123")
            .setAttempt(1)
            .setCompletedAtMs(1_700_000_044_000L)
            .build(),
        StageFailed.newBuilder()
            .setJobId("job-2")
            .setStep(0)
            .setStage("ingestion")
            .setReason("model.bin is a pickle file; expected *.safetensors")
            .setErrorType("dev.compactor.core.io.CheckpointFormatException")
            .setRetriable(false)
            .setWorker("host-b/7")
            .setAttempt(1)
            .setFailedAtMs(1_700_000_003_000L)
            .build(),
        EvaluationCompleted.newBuilder()
            .setJobId("job-1")
            .setStep(2)
            .setModel(pruned)
            .setBaseline(base)
            .setMetrics(
                EvaluationMetrics.newBuilder()
                    .setPerplexity(9.1)
                    .setBaselinePerplexity(8.7)
                    .setSizeBytes(1_100_000_000L)
                    .setBaselineSizeBytes(2_200_119_864L)
                    .setSparsity(0.5)
                    .build())
            .setExtra(Map.of("eval_tokens", 4096.0))
            .setCompletedAtMs(1_700_000_100_000L)
            .build(),
        ModelReady.newBuilder()
            .setJobId("job-1")
            .setName("tiny-wanda50")
            .setVersion("1")
            .setUri("s3://compactor/published/tiny-wanda50/1/")
            .setArtifact(pruned)
            .setModelCardUri("s3://compactor/published/tiny-wanda50/1/README.md")
            .setRecipeName("wanda50")
            .setMetrics(Map.of("perplexity_ratio", 1.046))
            .setLineage(List.of(base, pruned))
            .setPublishedAtMs(1_700_000_200_000L)
            .build(),
        JobStatus.newBuilder()
            .setJobId("job-1")
            .setState(JobState.SUCCEEDED)
            .setStep(3)
            .setTotalSteps(4)
            .setStage("publish")
            .setMessage("published tiny-wanda50:1")
            .setUpdatedAtMs(1_700_000_200_001L)
            .build());
  }
}
