package dev.compactor.services.testkit;

import ai.djl.Device;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StageRequested;
import java.nio.file.Path;
import java.util.Map;

/** A small random byte-level Llama and requests for it, so adapter tests run in seconds. */
public final class TestModels {
  public static final String RECIPE = "name: test-recipe\nstages:\n  - evaluate: { kl: true }\n";

  private TestModels() {}

  public static Path randomLlama(Path dir, int layers, long seed) throws Exception {
    ModelConfig config = ModelConfig.llama(257, 64, 128, layers, 4, 2, 128);
    try (Transformer t = Transformer.randomInit(config, seed, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(dir, 128);
    return dir;
  }

  public static StageRequested.Builder request(String stage, String paramsJson) {
    return StageRequested.newBuilder()
        .setJobId("job-1")
        .setStep(1)
        .setStage(stage)
        .setParamsJson(paramsJson)
        .setRecipeYaml(RECIPE)
        .setAttempt(1)
        .setRequestedAtMs(0L);
  }

  public static ArtifactRef ref(String bucket, String sha) {
    return ArtifactRef.newBuilder()
        .setUri("s3://" + bucket + "/artifacts/" + sha + "/")
        .setSha256(sha)
        .setSizeBytes(1L)
        .setFormat("hf-safetensors")
        .build();
  }
}
