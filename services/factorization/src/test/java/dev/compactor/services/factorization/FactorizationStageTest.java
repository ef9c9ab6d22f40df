package dev.compactor.services.factorization;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FactorizationStageTest {
  @TempDir static Path tmp;
  static Path model;

  static final String CAL =
      "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":32}";
  static final int[] TOKENS = {1, 40, 77, 102, 9, 250, 13, 64};

  /** 2 layers of q, k, v, o, gate, up, down. */
  static final int LINEARS = 2 * 7;

  @BeforeAll
  static void model() throws Exception {
    model = TestModels.randomLlama(tmp.resolve("model"), 2, 5);
  }

  private static StageResult run(String name, String params, String calibrationUri)
      throws Exception {
    StageContext ctx =
        StageContext.builder(
                TestModels.request("factorize", params).setCalibrationUri(calibrationUri).build())
            .inputDir(model)
            .outputDir(tmp.resolve(name + "-out"))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    return new FactorizationStage().run(ctx);
  }

  private static float[] logits(Path dir) throws Exception {
    try (Transformer t = Transformer.load(dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      return t.logits(m, m.create(TOKENS, new Shape(1, TOKENS.length))).toFloatArray();
    }
  }

  private static void assertFactorizedShrank(StageResult r) {
    assertEquals("hf-safetensors", r.format());
    assertEquals(LINEARS, r.metrics().get("linears"));
    assertEquals(LINEARS, r.metrics().get("factorizedLinears"));
    assertTrue(r.metrics().get("parametersAfter") < r.metrics().get("parametersBefore"));
    double macs = r.metrics().get("linearMacsPerTokenAfter");
    double before = r.metrics().get("linearMacsPerTokenBefore");
    // ratio 0.5 keeps about half of every linear's parameters, so of its multiply-adds
    assertEquals(0.5, macs / before, 0.05, "MACs " + macs + " of " + before);
    assertTrue(r.metrics().get("rankMin") >= 1);
    assertTrue(r.metrics().get("rankMin") <= r.metrics().get("rankMean"));
    assertTrue(r.metrics().get("rankMean") <= r.metrics().get("rankMax"));
    assertTrue(r.metrics().get("energyMean") > 0 && r.metrics().get("energyMean") <= 1);
  }

  /**
   * factorize.share runs cross-layer sharing: with the matrix form over both layers every linear is
   * stored once for the two layers (served to each as the same dense matrix), so the decoder
   * linears' stored parameters halve, and the model still loads and runs.
   */
  @Test
  void shareStoresOneMatrixForBothLayers() throws Exception {
    StageResult r = run("share", "{\"share\":{\"form\":\"matrix\",\"ratio\":0.5}}", null);
    assertEquals("hf-safetensors", r.format());
    assertEquals(
        0.5, r.metrics().get("linearParametersAfter") / r.metrics().get("linearParametersBefore"));
    assertTrue(r.metrics().get("weightBytesAfter") < r.metrics().get("weightBytesBefore"));
    assertTrue(r.metrics().get("parametersAfter") < r.metrics().get("parametersBefore"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      for (String l : new String[] {"self_attn.q_proj", "mlp.down_proj"}) {
        assertArrayEquals(
            s.readFloats("model.layers.0." + l + ".weight"),
            s.readFloats("model.layers.1." + l + ".weight"),
            l + " is one matrix for both layers");
      }
    }
    for (float v : logits(r.outputDir())) {
      assertTrue(Float.isFinite(v));
    }
  }

  @Test
  void plainSvdFactorizesEveryLinearAndTheOutputLoads() throws Exception {
    StageResult r = run("svd", "{\"method\":\"svd\",\"ratio\":0.5}", null);
    assertFactorizedShrank(r);
    assertEquals(0.0, r.metrics().get("calibrationTokens"));
    assertEquals(0.0, r.metrics().get("merged"));
    ModelConfig c = ModelConfig.read(r.outputDir());
    assertTrue(c.factorized(), "config.json names the low-rank linears");
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      assertEquals("svd", s.metadata().get("compactor.factorize.method"));
      assertTrue(s.contains("model.layers.0.self_attn.q_proj.u.weight"));
      assertFalse(s.contains("model.layers.0.self_attn.q_proj.weight"));
    }
    for (float v : logits(r.outputDir())) {
      assertTrue(Float.isFinite(v));
    }
  }

  @Test
  void svdLlmCalibratesOnTheRecipesTextAndRecordsIt() throws Exception {
    StageResult r =
        run("svd-llm", "{\"method\":\"svd_llm\",\"ratio\":0.5," + CAL + "}", "builtin:europarl");
    assertFactorizedShrank(r);
    assertEquals(4 * 32.0, r.metrics().get("calibrationTokens"));
    try (TensorSource s = Checkpoints.open(r.outputDir())) {
      assertEquals("svd_llm", s.metadata().get("compactor.factorize.method"));
      assertEquals("builtin:europarl", s.metadata().get("compactor.factorize.calibration.dataset"));
      assertEquals("4", s.metadata().get("compactor.factorize.calibration.samples"));
    }
    assertEquals(TOKENS.length * ModelConfig.read(model).vocabSize(), logits(r.outputDir()).length);
  }

  @Test
  void mergeStoresTheSameProductsDense() throws Exception {
    StageResult low = run("svd-pairs", "{\"method\":\"svd\",\"ratio\":0.5}", null);
    StageResult merged =
        run("svd-merged", "{\"method\":\"svd\",\"ratio\":0.5,\"merge\":true}", null);
    assertEquals(1.0, merged.metrics().get("merged"));
    assertEquals(LINEARS, merged.metrics().get("factorizedLinears"));
    // a merged output stores every linear dense again
    assertEquals(merged.metrics().get("parametersBefore"), merged.metrics().get("parametersAfter"));
    assertFalse(ModelConfig.read(merged.outputDir()).factorized());
    String q = "model.layers.1.self_attn.q_proj";
    try (TensorSource pairs = Checkpoints.open(low.outputDir());
        TensorSource dense = Checkpoints.open(merged.outputDir())) {
      assertFalse(dense.contains(q + ".u.weight"));
      long[] us = pairs.info(q + ".u.weight").shape();
      long[] vs = pairs.info(q + ".v.weight").shape();
      int out = (int) us[0];
      int rank = (int) us[1];
      int in = (int) vs[1];
      float[] u = pairs.readFloats(q + ".u.weight");
      float[] v = pairs.readFloats(q + ".v.weight");
      float[] w = dense.readFloats(q + ".weight");
      assertEquals((long) out * in, w.length);
      // the dense weight is u v, multiplied here in plain Java
      for (int i = 0; i < out; i++) {
        for (int j = 0; j < in; j++) {
          double sum = 0;
          for (int k = 0; k < rank; k++) {
            sum += (double) u[i * rank + k] * v[k * in + j];
          }
          assertEquals(sum, w[i * in + j], 1e-5, q + "[" + i + "," + j + "]");
        }
      }
    }
    float[] a = logits(low.outputDir());
    float[] b = logits(merged.outputDir());
    for (int i = 0; i < a.length; i++) {
      assertEquals(a[i], b[i], 1e-3, "logit " + i);
    }
  }

  @Test
  void aJobCancelledAfterItsFirstLayerStopsAndLeavesNoOutput() throws Exception {
    List<String> messages = new ArrayList<>();
    Path out = tmp.resolve("cancelled-out");
    StageContext ctx =
        StageContext.builder(
                TestModels.request("factorize", "{\"method\":\"svd\",\"ratio\":0.5}").build())
            .inputDir(model)
            .outputDir(out)
            .workDir(Files.createDirectories(tmp.resolve("cancelled-work")))
            .progress((fraction, message) -> messages.add(message))
            // cancelled once the first layer has been reported
            .cancelled(() -> messages.stream().anyMatch(m -> m.startsWith("factorized layer")))
            .build();
    assertThrows(CancellationException.class, () -> new FactorizationStage().run(ctx));
    assertEquals(
        1,
        messages.stream().filter(m -> m.startsWith("factorized layer")).count(),
        messages.toString());
    // floor(0.5 out in / (out + in)): q, o 64x64 -> 16; k, v 32x64 -> 10; gate, up, down 128x64 ->
    // 21
    assertTrue(
        messages.contains("factorized layer 1/2: ranks [16, 10, 10, 16, 21, 21, 21]"),
        messages.toString());
    assertFalse(Files.exists(out), "the partial model was removed");
  }

  @Test
  void aFixedRankIsRefusedBeforeAnyWork() throws Exception {
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> run("rank", "{\"method\":\"svd\",\"rank\":8}", null));
    assertTrue(e.getMessage().contains("not supported yet: factorize rank=8"), e.getMessage());
    assertFalse(Files.exists(tmp.resolve("rank-out")), "nothing was written");
  }
}
