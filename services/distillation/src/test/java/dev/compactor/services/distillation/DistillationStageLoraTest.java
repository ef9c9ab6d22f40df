package dev.compactor.services.distillation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.lora.PeftAdapterFiles;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.events.ArtifactRef;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code distill: {lora: ...}} in the distillation service: a 50 % magnitude-pruned tiny reference
 * model recovered against the dense baseline.
 */
class DistillationStageLoraTest {
  @TempDir Path tmp;

  /**
   * 48 English paragraphs of the bundled Europarl sample (40 that fall in the corpus's training
   * split, 8 in its validation split; 19 KB): the whole corpus costs ~20 s to parse and tokenize
   * per run, and this is enough for 16 training and 16 held-out windows of 32 tokens.
   */
  private static String calibration() throws Exception {
    Path text =
        Path.of(DistillationStageLoraTest.class.getResource("/lora-calibration.txt").toURI());
    return "\"calibration\":{\"dataset\":\"" + text.toUri() + "\",\"samples\":16,\"seq_len\":32}";
  }

  @Test
  void aKeptAdapterIsMergedWithThePrunedZerosAndStoredBesideTheModel() throws Exception {
    Path dense = TinyReferenceModel.shipped();
    Path pruned = tmp.resolve("pruned");
    Pruning.run(
        PruningSpec.of(PruningSpec.Method.MAGNITUDE, 0.5), dense, pruned, List::of, Device.cpu());
    String params =
        "{\"lora\":{\"rank\":4,\"targets\":[\"q_proj\",\"v_proj\",\"down_proj\"]},"
            + "\"steps\":8,\"lr\":0.003,\"checkpoint_every\":4,"
            + calibration()
            + "}";
    StageResult r = run(dense, pruned, params, "kept");
    Map<String, Double> m = r.metrics();
    assertEquals(1.0, m.get("loraKept"), m.toString());
    assertTrue(m.get("loraHeldOutKlAfter") < m.get("loraHeldOutKlBefore"), m.toString());
    assertEquals(8.0, m.get("steps"));
    assertEquals(2.0, m.get("checkpoints"));
    assertEquals(1.0, m.get("loraMaskedDelta"));
    Path adapter = r.outputDir().resolve(DistillationStage.ADAPTER_DIR);
    assertTrue(Files.isRegularFile(adapter.resolve(PeftAdapterFiles.CONFIG)));
    assertTrue(Files.isRegularFile(adapter.resolve(PeftAdapterFiles.WEIGHTS)));
    JsonNode provenance =
        new ObjectMapper().readTree(adapter.resolve(PeftAdapterFiles.PROVENANCE).toFile());
    assertEquals("job-1", provenance.path("job_id").asText());
    assertEquals(
        m.get("loraHeldOutKlAfter"), provenance.path("held_out").path("kl_after").asDouble(), 0);
    assertEquals(16, provenance.path("calibration").path("held_out_windows").asInt());

    // exactly the pruned zeros, and every adapted linear moved off the pruned weights
    try (Transformer before = Transformer.load(pruned, Device.cpu());
        Transformer after = Transformer.load(r.outputDir(), Device.cpu())) {
      int changed = 0;
      for (Map.Entry<String, NDArray> e : before.parameters().entrySet()) {
        float[] b = e.getValue().toFloatArray();
        float[] a = after.parameters().get(e.getKey()).toFloatArray();
        boolean differs = false;
        int zerosMoved = 0;
        for (int i = 0; i < b.length; i++) {
          zerosMoved += (b[i] == 0f) != (a[i] == 0f) ? 1 : 0;
          differs |= a[i] != b[i];
        }
        assertEquals(0, zerosMoved, e.getKey() + ": weights whose zero-ness changed");
        boolean adapted =
            e.getKey().endsWith("q_proj.weight")
                || e.getKey().endsWith("v_proj.weight")
                || e.getKey().endsWith("down_proj.weight");
        assertEquals(adapted, differs, e.getKey());
        changed += differs ? 1 : 0;
      }
      assertEquals(3 * before.config().numLayers(), changed);
    }
    assertTrue(Files.isRegularFile(r.outputDir().resolve("tokenizer.json")));
  }

  @Test
  void anAdapterThatRaisesTheHeldOutKlIsDroppedAndTheInputPassedOn() throws Exception {
    Path dense = TinyReferenceModel.shipped();
    // a learning rate of 5 wrecks the adapter within two steps
    String params =
        "{\"lora\":{\"rank\":2,\"targets\":[\"o_proj\"]},\"steps\":2,\"lr\":5,"
            + calibration()
            + "}";
    StageResult r = run(dense, dense, params, "dropped");
    assertEquals(0.0, r.metrics().get("loraKept"), r.metrics().toString());
    assertFalse(Files.exists(r.outputDir().resolve(DistillationStage.ADAPTER_DIR)));
    assertEquals(
        Files.mismatch(
            dense.resolve("model.safetensors"), r.outputDir().resolve("model.safetensors")),
        -1L);
  }

  @Test
  void heldOutWindowsWithoutAValidationSplitAreConsecutiveAndTrainingWindowsSeeded() {
    int[] tokens = new int[100];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = i;
    }
    List<int[]> held = DistillationStage.consecutiveWindows(tokens, 16, 33, "t");
    assertEquals(3, held.size());
    assertEquals(66, held.get(2)[0]);
    assertEquals(98, held.get(2)[32]);
    List<int[]> a = DistillationStage.randomWindows(tokens, 5, 33, 7, "t");
    List<int[]> b = DistillationStage.randomWindows(tokens, 5, 33, 7, "t");
    for (int i = 0; i < 5; i++) {
      assertEquals(java.util.Arrays.toString(a.get(i)), java.util.Arrays.toString(b.get(i)));
      assertEquals(a.get(i)[0] + 32, a.get(i)[32]);
    }
    org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class,
        () -> DistillationStage.consecutiveWindows(new int[10], 16, 33, "t"));
  }

  private StageResult run(Path baseline, Path input, String params, String name) throws Exception {
    ArtifactRef ref =
        ArtifactRef.newBuilder()
            .setUri("s3://b/artifacts/x/")
            .setSha256("0".repeat(64))
            .setSizeBytes(1)
            .setFormat("hf-safetensors")
            .build();
    StageContext ctx =
        StageContext.builder(
                TestModels.request("distill", params).setBaseline(ref).setInput(ref).build())
            .inputDir(input)
            .baselineDir(baseline)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve(name + "-ckpt"), 1);
    ExecutorService thread = Executors.newSingleThreadExecutor();
    try {
      return thread.submit(() -> new DistillationStage(c -> sink).run(ctx)).get();
    } finally {
      thread.shutdown();
    }
  }
}
