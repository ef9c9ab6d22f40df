package dev.compactor.core.factorize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.moe.Moefier;
import dev.compactor.core.prune.depth.DepthPruner;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LinearGroups;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole-model factorization on a small random Llama whose decoder linears have exact rank {@value
 * #K}: at ranks >= K both methods reproduce its logits, the factorized form loads resident and
 * streamed and saves, --merge stores u v, and dense-only stages refuse the factorized form.
 */
class FactorizationTest {

  static final int K = 3;
  static final int[] TOKENS = {1, 5, 9, 2, 7, 3, 11, 4, 30, 8, 2, 6};

  @TempDir static Path dir;
  static Path dense;

  @BeforeAll
  static void exactLowRankModel() throws Exception {
    ModelConfig c = ModelConfig.llama(40, 32, 64, 2, 4, 2, 64);
    dense = dir.resolve("dense");
    Random rnd = new Random(8);
    try (Transformer t = Transformer.randomInit(c, 1, Device.cpu())) {
      for (int i = 0; i < c.numLayers(); i++) {
        for (String linear : Layout.linears(c, i)) {
          int[] s = LinearGroups.shape(c, i, linear);
          NDArray w = t.parameters().get(t.layerPrefix(i) + linear + ".weight");
          float[] low = LowRankFactorizerTest.lowRank(rnd, s[0], s[1], K);
          w.set(low);
        }
      }
      t.save(dense, DType.F32, Map.of());
    }
  }

  static FactorizeSpec spec(FactorizeSpec.Method m, boolean merge) {
    return new FactorizeSpec(m, RankRule.ratio(0.5), List.of(), merge);
  }

  static List<int[]> windows() {
    Random r = new Random(3);
    List<int[]> w = new ArrayList<>();
    for (int n = 0; n < 6; n++) {
      int[] t = new int[16];
      for (int i = 0; i < t.length; i++) {
        t[i] = r.nextInt(40);
      }
      w.add(t);
    }
    return w;
  }

  static float[] logits(CausalLM model) {
    try (NDManager m = NDManager.newBaseManager()) {
      return model.logits(m, m.create(TOKENS, new Shape(2, TOKENS.length / 2))).toFloatArray();
    }
  }

  static double maxDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  @Test
  void bothMethodsReproduceAnExactLowRankModelResidentAndStreamed() throws Exception {
    float[] want;
    try (Transformer t = Transformer.load(dense, Device.cpu())) {
      want = logits(t);
    }
    for (FactorizeSpec.Method m : FactorizeSpec.Method.values()) {
      Path out = dir.resolve("f-" + m.key());
      List<Integer> layers = new ArrayList<>();
      FactorizationReport report =
          Factorization.run(
              spec(m, false), dense, out, FactorizationTest::windows, (l, n, ms) -> layers.add(l));
      assertEquals(List.of(0, 1), layers);
      assertEquals(14, report.factorizedCount());
      assertTrue(report.parametersAfter() < report.parametersBefore());
      assertTrue(report.linearMacsAfter() < report.linearMacsBefore());
      assertEquals(m == FactorizeSpec.Method.SVD ? 0 : 6 * 16, report.calibrationTokens());
      ModelConfig c = ModelConfig.read(out);
      assertTrue(c.factorized());
      // q_proj [32, 32] at ratio 0.5: floor(0.5 * 1024 / 64) = 8
      assertEquals(8, c.lowRank("model.layers.0.self_attn.q_proj"));
      try (TensorSource src = Checkpoints.open(out)) {
        assertFalse(src.contains("model.layers.0.self_attn.q_proj.weight"));
        assertEquals(List.of(8L, 32L), List.of(shape(src, "model.layers.0.self_attn.q_proj.v")));
        assertEquals(List.of(32L, 8L), List.of(shape(src, "model.layers.0.self_attn.q_proj.u")));
        long stored = 0;
        for (String n : src.names()) {
          stored += src.info(n).numel();
        }
        assertEquals(report.parametersAfter(), stored);
        assertEquals(report.parametersAfter(), c.parameterCount());
      }
      try (Transformer t = Transformer.load(out, Device.cpu())) {
        assertTrue(maxDiff(want, logits(t)) <= 1e-4, m + " resident " + maxDiff(want, logits(t)));
        Path saved = dir.resolve("saved-" + m.key());
        t.save(saved, DType.F32, Map.of());
        try (Transformer again = Transformer.load(saved, Device.cpu())) {
          assertEquals(0, maxDiff(logits(t), logits(again)), "save/load round trip");
        }
      }
      try (StreamingTransformer s = StreamingTransformer.open(out, Device.cpu())) {
        assertTrue(maxDiff(want, logits(s)) <= 1e-4, m + " streamed");
      }
      try (Transformer t = Transformer.load(out, Device.cpu());
          NDManager nd = NDManager.newBaseManager();
          CausalLM.Decoder dec = t.decoder(nd, 2)) {
        // prompt of 4, then one token at a time: the cached path runs the factors too
        int seq = TOKENS.length / 2;
        int vocab = t.vocabSize();
        float[] got = new float[want.length];
        for (int pos = 0; pos < seq; pos += pos == 0 ? 4 : 1) {
          int n = pos == 0 ? 4 : 1;
          int[] step = new int[2 * n];
          for (int b = 0; b < 2; b++) {
            System.arraycopy(TOKENS, b * seq + pos, step, b * n, n);
          }
          float[] l = dec.step(nd.create(step, new Shape(2, n))).toFloatArray();
          for (int b = 0; b < 2; b++) {
            System.arraycopy(l, b * n * vocab, got, (b * seq + pos) * vocab, n * vocab);
          }
        }
        assertTrue(maxDiff(want, got) <= 1e-4, m + " KV cache " + maxDiff(want, got));
      }
    }
  }

  @Test
  void mergeStoresTheProductAsDenseWeights() throws Exception {
    Path factors = dir.resolve("m-factors");
    Path merged = dir.resolve("m-merged");
    Factorization.run(spec(FactorizeSpec.Method.SVD, false), dense, factors, null, null);
    FactorizationReport r =
        Factorization.run(spec(FactorizeSpec.Method.SVD, true), dense, merged, null, null);
    assertEquals(r.parametersBefore(), r.parametersAfter());
    assertEquals(r.linearMacsBefore(), r.linearMacsAfter());
    assertEquals(
        new ObjectMapper().readTree(Files.readString(dense.resolve("config.json"))),
        new ObjectMapper().readTree(Files.readString(merged.resolve("config.json"))));
    ModelConfig c = ModelConfig.read(factors);
    try (TensorSource f = Checkpoints.open(factors);
        TensorSource m = Checkpoints.open(merged);
        TensorSource d = Checkpoints.open(dense)) {
      assertEquals(d.names().size(), m.names().size());
      for (int i = 0; i < c.numLayers(); i++) {
        for (String linear : Layout.linears(c, i)) {
          String name = "model.layers." + i + "." + linear;
          int rank = c.lowRank(name);
          int[] s = LinearGroups.shape(ModelConfig.read(dense), i, linear);
          float[] product =
              LowRankFactorizer.product(
                  f.readFloats(name + ".u.weight"),
                  f.readFloats(name + ".v.weight"),
                  s[0],
                  rank,
                  s[1]);
          float[] stored = m.readFloats(name + ".weight");
          for (int e = 0; e < product.length; e++) {
            assertEquals(product[e], stored[e], 1e-6, name);
          }
        }
      }
    }
    try (Transformer a = Transformer.load(factors, Device.cpu());
        Transformer b = Transformer.load(merged, Device.cpu())) {
      assertTrue(maxDiff(logits(a), logits(b)) <= 1e-4);
    }
  }

  @Test
  void linearsSelectsByShortOrRelativeNameAndRefusesUnknownNames() throws Exception {
    Path out = dir.resolve("sel");
    FactorizationReport r =
        Factorization.run(
            new FactorizeSpec(
                FactorizeSpec.Method.SVD,
                RankRule.ratio(0.5),
                List.of("q_proj", "mlp.down_proj"),
                false),
            dense,
            out,
            null,
            null);
    assertEquals(4, r.factorizedCount());
    assertEquals(
        List.of("model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"),
        r.matrices().subList(0, 2).stream().map(FactorizationReport.Matrix::name).toList());
    assertEquals(4, ModelConfig.read(out).lowRank().size());
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Factorization.run(
                    new FactorizeSpec(
                        FactorizeSpec.Method.SVD, RankRule.ratio(0.5), List.of("qproj"), false),
                    dense,
                    dir.resolve("sel-bad"),
                    null,
                    null));
    assertTrue(e.getMessage().contains("qproj"), e.getMessage());
  }

  @Test
  void denseOnlyStagesRefuseTheFactorizedForm() throws Exception {
    Path out = dir.resolve("refuse");
    Factorization.run(spec(FactorizeSpec.Method.SVD, false), dense, out, null, null);
    ModelConfig c = ModelConfig.read(out);
    String want = "not supported yet: low-rank factorized linears (factorize with --merge first)";
    assertEquals(want, ModelConfig.LOW_RANK_REFUSAL);
    List<org.junit.jupiter.api.function.Executable> refused =
        List.of(
            () ->
                new CalibrationCollector(
                    c,
                    i -> LinearGroups.trueSequential(c, i),
                    CalibrationCollector.Propagation.QUANTIZED,
                    true,
                    1),
            () ->
                LlamaGgufExporter.export(
                    new ObjectMapper().readTree(c.toJson()), null, null, null, null, null, out),
            () -> Moefier.moefiedConfig(c, 4, 2),
            () -> DepthPruner.requireSupported(c, new ObjectMapper().readTree(c.toJson())));
    for (var r : refused) {
      assertEquals(want, assertThrows(UnsupportedOperationException.class, r).getMessage());
    }
    UnsupportedOperationException again =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                Factorization.run(
                    spec(FactorizeSpec.Method.SVD, false), out, dir.resolve("x"), null, null));
    assertTrue(again.getMessage().startsWith("not supported: factorizing an already factorized"));
  }

  @Test
  void aFailedRunLeavesNoPartialModel() {
    Path out = dir.resolve("failed");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Factorization.run(
                    spec(FactorizeSpec.Method.SVD_LLM, false),
                    dense,
                    out,
                    () -> List.of(new int[] {1, 2, 999}),
                    null));
    assertTrue(e.getMessage().contains("999"), e.getMessage());
    assertFalse(Files.exists(out), "partial output removed");
  }

  @Test
  void configRejectsMalformedLowRankEntries() {
    ModelConfig c = ModelConfig.llama(40, 32, 64, 2, 4, 2, 64);
    assertThrows(
        IllegalArgumentException.class,
        () -> c.with("{\"compactor_low_rank\":{\"model.layers.5.mlp.up_proj\":4}}"));
    assertThrows(
        IllegalArgumentException.class,
        () -> c.with("{\"compactor_low_rank\":{\"model.layers.0.mlp.up_proj\":0}}"));
    ModelConfig typo = c.with("{\"compactor_low_rank\":{\"model.layers.0.mlp.upproj\":4}}");
    assertThrows(IllegalArgumentException.class, () -> Layout.layer(typo, 0));
  }

  private static Long[] shape(TensorSource src, String linear) {
    long[] s = src.info(linear + ".weight").shape();
    return new Long[] {s[0], s[1]};
  }
}
