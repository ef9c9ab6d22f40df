package dev.compactor.services.publishing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.ArtifactRef;
import dev.compactor.events.ModelReady;
import dev.compactor.infra.EmbeddedS3;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.ArtifactStore;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.evaluation.EvaluationReport;
import dev.compactor.services.evaluation.EvaluationStage;
import dev.compactor.services.testkit.TestModels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PublishingStageTest {
  @TempDir static Path tmp;
  static EmbeddedS3 s3;
  static BlobStore blobs;
  static ArtifactRef baseline;
  static ArtifactRef model;
  static Path modelDir;

  private static final String RECIPE =
      "name: tiny-int8\nstages:\n  - quantize: { method: rtn, bits: 8 }\n"
          + "  - evaluate: { kl: true }\n  - publish: { gates: { max_perplexity_increase: 0.1 } }\n";

  @BeforeAll
  static void start() throws Exception {
    s3 = EmbeddedS3.start(tmp.resolve("s3"));
    blobs =
        BlobStore.create(
            StageConfig.of(
                Map.of(
                    "COMPACTOR_STAGE", "publish",
                    "COMPACTOR_S3_ENDPOINT", s3.endpoint().toString(),
                    "COMPACTOR_S3_ACCESS_KEY", s3.accessKey(),
                    "COMPACTOR_S3_SECRET_KEY", s3.secretKey())));
    blobs.ensureBucket("art");
    ArtifactStore store = new ArtifactStore(blobs, "art");
    Path base = TestModels.randomLlama(tmp.resolve("base"), 1, 1);
    baseline =
        store.upload(
            base,
            "hf-safetensors",
            new ArtifactManifest.Provenance("ingestion", RECIPE, null, Map.of()));
    modelDir = TestModels.randomLlama(tmp.resolve("model"), 1, 2);
    Files.writeString(modelDir.resolve("model-q8_0.gguf"), "not really gguf");
    model =
        store.upload(
            modelDir,
            "hf-safetensors",
            new ArtifactManifest.Provenance(
                "quantize", RECIPE, baseline.getSha256(), Map.of("bits", 8.0)));
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  private static void report(String jobId, double ppl) {
    EvaluationReport r =
        new EvaluationReport(
            jobId,
            model.getSha256(),
            baseline.getSha256(),
            Map.of("perplexity", ppl, "baselinePerplexity", 10.0, "sizeBytes", 5.0),
            "builtin:europarl");
    blobs.putBytes(
        EvaluationReport.location("art", jobId, model.getSha256()), r.toJson(), "application/json");
  }

  private static StageResult publish(String jobId) throws Exception {
    StageContext ctx =
        StageContext.builder(
                TestModels.request("publish", "{\"gates\":{\"max_perplexity_increase\":0.1}}")
                    .setJobId(jobId)
                    .setRecipeYaml(RECIPE)
                    .setInput(model)
                    .setBaseline(baseline)
                    .build())
            .inputDir(modelDir)
            .inputManifest(new ArtifactStore(blobs, "art").manifest(model))
            .baselineDir(tmp.resolve("base"))
            .outputDir(Files.createDirectories(tmp.resolve(jobId + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(jobId + "-work")))
            .build();
    return new PublishingStage(blobs).run(ctx);
  }

  @Test
  void passingModelsGetTheNextVersionAndARepublishKeepsIt() throws Exception {
    report("job-a", 10.5);
    report("job-b", 10.9);
    ModelReady a = (ModelReady) publish("job-a").events().get(0).value().apply(null);
    ModelReady b = (ModelReady) publish("job-b").events().get(0).value().apply(null);
    ModelReady again = (ModelReady) publish("job-a").events().get(0).value().apply(null);
    assertEquals("tiny-int8", a.getName());
    assertEquals(Integer.parseInt(a.getVersion()) + 1, Integer.parseInt(b.getVersion()));
    assertEquals(a.getVersion(), again.getVersion());
    assertEquals("s3://art/models/tiny-int8/v" + a.getVersion() + "/", a.getUri());
    assertEquals(2, a.getLineage().size());
    assertEquals(baseline.getSha256(), a.getLineage().get(0).getSha256());
    assertEquals(model.getSha256(), a.getLineage().get(1).getSha256());
    assertEquals(1, a.getExports().size());
    String card =
        new String(
            blobs.getBytes(S3Uri.parse(a.getModelCardUri()), 1 << 20), StandardCharsets.UTF_8);
    assertTrue(card.contains("| Perplexity | 10.5000 | 10.0000 |"), card);
    assertTrue(card.contains(baseline.getSha256()) && card.contains("max_perplexity_increase"));
    assertTrue(blobs.exists(S3Uri.parse(a.getUri() + "model.safetensors")));

    // The report carried a nominal size and no form: publishing measures the published files.
    long gguf = Files.size(modelDir.resolve("model-q8_0.gguf"));
    assertEquals(gguf, a.getSizeBytes(), "the smallest stored form is the (fake, tiny) GGUF");
    assertEquals("gguf:model-q8_0.gguf", a.getSizeFormat());
    long all;
    try (var files = Files.walk(modelDir)) {
      all = files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
    assertEquals(all, a.getFiles().stream().mapToLong(f -> f.getSizeBytes()).sum());
    assertTrue(
        card.contains(
            "| `model.safetensors` | safetensors | "
                + Files.size(modelDir.resolve("model.safetensors"))
                + " |"),
        card);
    assertTrue(card.contains("smallest stored form, gguf:model-q8_0.gguf"), card);
  }

  @Test
  void theEvaluatedRoutingPolicyIsPublishedListedAndOnTheCard() throws Exception {
    report("job-policy", 10.2);
    byte[] policy =
        "{\"signal\": \"maxprob\", \"threshold\": 0.62}".getBytes(StandardCharsets.UTF_8);
    blobs.putBytes(
        EvaluationStage.routingPolicyLocation("art", "job-policy", model.getSha256()),
        policy,
        "application/json");
    ModelReady r = (ModelReady) publish("job-policy").events().get(0).value().apply(null);
    var listed =
        r.getFiles().stream().filter(f -> f.getPath().equals("routing_policy.json")).toList();
    assertEquals(1, listed.size(), r.getFiles().toString());
    assertEquals("routing-policy", listed.get(0).getFormat());
    assertEquals(policy.length, listed.get(0).getSizeBytes());
    assertArrayEquals(
        policy, blobs.getBytes(S3Uri.parse(r.getUri() + "routing_policy.json"), 1 << 20));
    String card =
        new String(
            blobs.getBytes(S3Uri.parse(r.getModelCardUri()), 1 << 20), StandardCharsets.UTF_8);
    assertTrue(card.contains("## Routing policy") && card.contains("\"threshold\": 0.62"), card);
    assertTrue(card.contains("| `routing_policy.json` | routing-policy | "), card);
    // the smallest stored form is still the model's, not the policy
    assertEquals("gguf:model-q8_0.gguf", r.getSizeFormat());
  }

  @Test
  void aLoraStepsAdapterIsPublishedBesideTheModelAndListedInExports() throws Exception {
    ArtifactStore store = new ArtifactStore(blobs, "art");
    Path lora = TestModels.randomLlama(tmp.resolve("lora"), 1, 3);
    Path adapter = Files.createDirectories(lora.resolve("adapter"));
    Files.writeString(adapter.resolve("adapter_config.json"), "{\"peft_type\":\"LORA\",\"r\":4}");
    Files.writeString(adapter.resolve("adapter_model.safetensors"), "not really safetensors");
    Files.writeString(
        adapter.resolve("compactor.json"),
        "{\"lora_delta\":\"masked-to-base-nonzeros\",\"base_sha256\":\"abc\","
            + "\"settings\":{\"lora\":{\"rank\":4,\"alpha\":8.0,\"targets\":[\"q_proj\"]},"
            + "\"steps\":20,\"lr\":0.002,\"alpha\":1.0},"
            + "\"calibration\":{\"dataset\":\"s3://d/cal.txt\",\"train_windows\":32,"
            + "\"seq_len\":64,\"held_out_windows\":16,\"held_out_split\":\"validation\"}}");
    ArtifactRef loraRef =
        store.upload(
            lora,
            "hf-safetensors",
            new ArtifactManifest.Provenance(
                "distill",
                RECIPE,
                baseline.getSha256(),
                Map.of("loraHeldOutKlBefore", 0.0866, "loraHeldOutKlAfter", 0.0465)));
    Path quantized = TestModels.randomLlama(tmp.resolve("quantized"), 1, 4);
    ArtifactRef q =
        store.upload(
            quantized,
            "hf-safetensors",
            new ArtifactManifest.Provenance("quantize", RECIPE, loraRef.getSha256(), Map.of()));
    EvaluationReport r =
        new EvaluationReport(
            "job-l",
            q.getSha256(),
            baseline.getSha256(),
            Map.of("perplexity", 10.2, "baselinePerplexity", 10.0, "sizeBytes", 5.0),
            "builtin:europarl");
    blobs.putBytes(
        EvaluationReport.location("art", "job-l", q.getSha256()), r.toJson(), "application/json");
    StageContext ctx =
        StageContext.builder(
                TestModels.request("publish", "{\"gates\":{\"max_perplexity_increase\":0.1}}")
                    .setJobId("job-l")
                    .setRecipeYaml(RECIPE)
                    .setInput(q)
                    .setBaseline(baseline)
                    .build())
            .inputDir(quantized)
            .inputManifest(store.manifest(q))
            .baselineDir(tmp.resolve("base"))
            .outputDir(Files.createDirectories(tmp.resolve("job-l-out")))
            .workDir(Files.createDirectories(tmp.resolve("job-l-work")))
            .build();
    ModelReady ready =
        (ModelReady) new PublishingStage(blobs).run(ctx).events().get(0).value().apply(null);
    assertEquals(3, ready.getLineage().size());
    ArtifactRef export =
        ready.getExports().stream()
            .filter(e -> e.getFormat().equals("peft-lora"))
            .findFirst()
            .orElseThrow();
    assertEquals(ready.getUri() + "adapter/", export.getUri());
    S3Uri at = S3Uri.parse(export.getUri());
    assertEquals(
        "not really safetensors",
        new String(
            blobs.getBytes(at.resolve("adapter_model.safetensors"), 1 << 10),
            StandardCharsets.UTF_8));
    ArtifactManifest m =
        ArtifactManifest.parse(blobs.getBytes(at.resolve("manifest.json"), 1 << 20));
    assertEquals("peft-lora", m.format());
    assertEquals(3, m.files().size());
    assertEquals(loraRef.getSha256(), m.provenance().parentSha256());
    String card =
        new String(
            blobs.getBytes(S3Uri.parse(ready.getModelCardUri()), 1 << 20), StandardCharsets.UTF_8);
    assertTrue(card.contains("## LoRA adapter (`adapter/`)"), card);
    assertTrue(card.contains("| rank r | 4 |"), card);
    assertTrue(card.contains("| held-out KL to the baseline after (nats/token) | 0.0465 |"), card);
    assertTrue(card.contains("on `s3://d/cal.txt` (32 windows of 64 tokens)"), card);
    assertTrue(card.contains("already include this adapter"), card);
    assertTrue(card.contains("kept the pruned zeros exactly"), card);
  }

  @Test
  void aFailedGateSaysWhichAndByHowMuch() {
    report("job-c", 12.0);
    PublishingStage.QualityGateException e =
        assertThrows(PublishingStage.QualityGateException.class, () -> publish("job-c"));
    assertTrue(e.getMessage().contains("max_perplexity_increase: perplexity rose 20.00%"));
    assertTrue(e.getMessage().contains("over by 10.00 points"), e.getMessage());
  }

  @Test
  void withoutAnEvaluationThereIsNothingToGate() {
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> publish("job-d"));
    assertTrue(e.getMessage().contains("add an evaluate step"), e.getMessage());
  }
}
