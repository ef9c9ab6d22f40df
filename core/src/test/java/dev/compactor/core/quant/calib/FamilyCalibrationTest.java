package dev.compactor.core.quant.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.MagnitudePruner;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.awq.AwqConfig;
import dev.compactor.core.quant.awq.AwqLayerQuantizer;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.WeightQuantization;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Calibrated GPTQ, AWQ and Wanda end to end on one golden model per family the forward runs
 * (windowed attention, q/k norms, fused projections, experts), and the fallback of an expert the
 * router never picks.
 */
class FamilyCalibrationTest {

  @TempDir Path tmp;

  private static final int SEQ = 8;

  private static List<int[]> samples(ModelConfig c) {
    return CalibrationCollectorTest.samples(6, SEQ, c.vocabSize(), 11);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama_gqa_untied_bias_bf16",
        "mistral_window",
        "qwen2_window_layers",
        "qwen3_qk_norm",
        "phi3_fused",
        "mixtral_moe",
        "qwen2_moe_shared",
        "qwen3_moe_qk_norm"
      })
  void gptqInt4IsFiniteQuantizesEveryLinearAndLeavesTheRestAlone(String name) throws IOException {
    try (Golden g = new Golden(name)) {
      ModelConfig c = ModelConfig.read(g.dir);
      Map<Integer, Map<String, float[]>> layers = new HashMap<>();
      Map<Integer, Map<String, QuantizedLinear>> quantized = new HashMap<>();
      Path out = tmp.resolve("gptq");
      LayerwiseQuantizer.Summary summary;
      WeightQuantization gptq = new WeightQuantization(WeightQuantization.Method.GPTQ, 4, 0);
      try (DequantizedCheckpointSink hf = new DequantizedCheckpointSink(g.dir, out, Map.of())) {
        summary =
            LayerwiseQuantizer.run(
                g.dir,
                gptq,
                samples(c),
                (layer, weights, q) -> {
                  layers.put(layer, new LinkedHashMap<>(weights));
                  quantized.put(layer, new LinkedHashMap<>(q));
                  hf.accept(layer, weights, q);
                },
                ProgressListener.NONE);
        hf.finish(DequantizedCheckpointSink.quantizationConfig(gptq, summary), null);
      }
      assertEquals(compressibleCount(c), summary.quantizedLinears());
      JsonNode written =
          new ObjectMapper()
              .readTree(out.resolve("config.json").toFile())
              .path("quantization_config")
              .path("expert_calibration_tokens");
      assertEquals(sparseLayers(c) * c.numExperts(), written.size());
      try (TensorSource src = Checkpoints.open(g.dir)) {
        for (int i = 0; i < c.numLayers(); i++) {
          String prefix = Layout.layerPrefix(c, "", i);
          assertEquals(
              Set.copyOf(LinearGroups.compressible(c, i)), quantized.get(i).keySet(), name);
          for (Layout.Spec s : Layout.layer(c, i)) {
            float[] w = layers.get(i).get(s.name());
            for (float v : w) {
              assertTrue(Float.isFinite(v), name + " " + s.name());
            }
            String linear = s.name().replace(".weight", "");
            if (quantized.get(i).containsKey(linear) && s.name().endsWith(".weight")) {
              assertArrayEquals(quantized.get(i).get(linear).dequantize(), w, name + " " + linear);
              assertEquals(4, quantized.get(i).get(linear).bits());
            } else {
              // norms (q/k norms included), biases, the router and shared_expert_gate: untouched
              assertArrayEquals(src.readFloats(prefix + s.name()), w, name + " " + s.name());
            }
          }
        }
      }
      assertRoutedTokensAddUp(c, summary.expertTokens());
      assertFiniteLogits(out, g);
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama_gqa_untied_bias_bf16",
        "mistral_window",
        "qwen2_window_layers",
        "qwen3_qk_norm",
        "phi3_fused",
        "mixtral_moe",
        "qwen2_moe_shared",
        "qwen3_moe_qk_norm"
      })
  void awqInt4IsFiniteAndLeavesRouterAndQkNormsAlone(String name) throws IOException {
    try (Golden g = new Golden(name)) {
      ModelConfig c = ModelConfig.read(g.dir);
      WeightQuantization awq = new WeightQuantization(WeightQuantization.Method.AWQ, 4, 0);
      Path out = tmp.resolve("awq");
      Map<Integer, Map<String, QuantizedLinear>> quantized = new HashMap<>();
      try (DequantizedCheckpointSink hf = new DequantizedCheckpointSink(g.dir, out, Map.of())) {
        LayerwiseQuantizer.Summary summary =
            LayerwiseQuantizer.run(
                g.dir,
                awq,
                samples(c),
                (layer, weights, q) -> {
                  quantized.put(layer, new LinkedHashMap<>(q));
                  hf.accept(layer, weights, q);
                },
                ProgressListener.NONE);
        hf.finish(DequantizedCheckpointSink.quantizationConfig(awq, summary), null);
      }
      try (TensorSource src = Checkpoints.open(g.dir);
          TensorSource got = Checkpoints.open(out)) {
        for (int i = 0; i < c.numLayers(); i++) {
          assertEquals(
              Set.copyOf(LinearGroups.compressible(c, i)), quantized.get(i).keySet(), name);
          String prefix = Layout.layerPrefix(c, "", i);
          List<String> untouched = new java.util.ArrayList<>();
          if (c.sparseLayer(i)) {
            untouched.add(Layout.router(c) + ".weight");
            if (Layout.hasSharedExpert(c)) {
              untouched.add(Layout.sharedExpertGate(c) + ".weight");
            }
          }
          if (c.qkNorm()) {
            untouched.add("self_attn.q_norm.weight");
            untouched.add("self_attn.k_norm.weight");
          }
          for (String t : untouched) {
            assertArrayEquals(
                src.readFloats(prefix + t), got.readFloats(prefix + t), name + " " + t);
          }
        }
      }
      assertFiniteLogits(out, g);
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama_gqa_untied_bias_bf16",
        "mistral_window",
        "qwen3_qk_norm",
        "phi3_fused",
        "mixtral_moe",
        "qwen2_moe_shared",
        "qwen3_moe_qk_norm"
      })
  void awqScalesFoldExactlyIntoNormsAndProducers(String name) throws IOException {
    try (Golden g = new Golden(name)) {
      assertAwqFoldsExactly(g.dir, name);
    }
  }

  /**
   * Multi-head attention (every query head its own kv head), where o_proj's scale folds into v's
   * rows (and bias): Llama with attention biases, and Qwen3, whose q/k norms leave v alone.
   */
  @ParameterizedTest
  @ValueSource(strings = {"llama", "qwen3"})
  void awqFoldsOProjIntoVWithMultiHeadAttention(String type) throws IOException {
    ModelConfig c =
        ModelConfig.llama(64, 32, 64, 2, 4, 4, 64)
            .with(
                "{\"model_type\":\""
                    + type
                    + "\",\"attention_bias\":"
                    + type.equals("llama")
                    + ",\"head_dim\":8}");
    Path dir = tmp.resolve(type);
    try (Transformer t = Transformer.randomInit(c, 3, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    assertAwqFoldsExactly(dir, type);
  }

  /** AWQ scales only (no rounding): each layer must compute what it computed before. */
  private static void assertAwqFoldsExactly(Path dir, String name) throws IOException {
    ModelConfig c = ModelConfig.read(dir);
    AwqLayerQuantizer awq = new AwqLayerQuantizer(c, AwqConfig.int4(0, true), false, null);
    boolean oScaled = c.numKvHeads() == c.numHeads() && !c.fusedProjections();
    int[] checked = new int[1];
    Set<String> changed = new java.util.HashSet<>();
    try (TensorSource source = Checkpoints.open(dir);
        NDManager m = NDManager.newBaseManager()) {
      Forward forward = new Forward(c, "", m);
      NDArray x = m.randomNormal(new Shape(2, SEQ, c.hiddenSize()));
      new CalibrationCollector(
              c,
              layer -> LinearGroups.oneStage(c, layer),
              CalibrationCollector.Propagation.ORIGINAL,
              true,
              4)
          .run(
              source,
              samples(c),
              (layer, linears, weights, stats) -> {
                Map<String, float[]> before = new HashMap<>();
                weights.forEach((k, v) -> before.put(k, v.clone()));
                awq.quantize(layer, linears, weights, stats);
                for (String k : weights.keySet()) {
                  if (!java.util.Arrays.equals(before.get(k), weights.get(k))) {
                    changed.add(k);
                  }
                }
                float[] expected = layerOutput(forward, m, c, layer, before, x);
                float[] got = layerOutput(forward, m, c, layer, weights, x);
                assertArrayEquals(expected, got, 2e-4f, name + " layer " + layer);
                if (c.sparseLayer(layer)) {
                  assertSparseLayerScaling(c, layer, before, weights);
                }
                checked[0]++;
              });
    }
    assertEquals(c.numLayers(), checked[0]);
    assertFalse(changed.isEmpty(), name + ": AWQ scaled nothing");
    // o_proj's columns are scaled (and v's rows divided) exactly when its fold is allowed
    assertEquals(oScaled, changed.contains("self_attn.o_proj.weight"), name + " o_proj scaled");
  }

  private static float[] layerOutput(
      Forward forward, NDManager m, ModelConfig c, int layer, Map<String, float[]> w, NDArray x) {
    try (NDManager scope = m.newSubManager()) {
      Map<String, NDArray> arrays = new HashMap<>();
      for (Layout.Spec s : Layout.layer(c, layer)) {
        arrays.put(s.name(), scope.create(w.get(s.name()), new Shape(s.shape())));
      }
      NDArray in = x.duplicate();
      in.attach(scope);
      return forward.layer(scope, layer, arrays, in, null).toFloatArray();
    }
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "llama_gqa_tied",
        "mistral_window",
        "qwen2_window_layers",
        "qwen3_qk_norm",
        "phi3_fused",
        "mixtral_moe",
        "qwen2_moe_shared",
        "qwen3_moe_qk_norm"
      })
  void wandaHalvesEveryRowOfEveryLinearAndLeavesTheRestAlone(String name) throws IOException {
    try (Golden g = new Golden(name)) {
      ModelConfig c = ModelConfig.read(g.dir);
      Path out = tmp.resolve("wanda");
      PruningReport report =
          Pruning.run(
              PruningSpec.of(PruningSpec.Method.WANDA, 0.5),
              g.dir,
              out,
              () -> samples(c),
              Device.cpu());
      assertEquals(compressibleCount(c), report.tensors().size());
      try (TensorSource src = Checkpoints.open(g.dir);
          TensorSource pruned = Checkpoints.open(out)) {
        for (String t : src.names()) {
          float[] before = src.readFloats(t);
          float[] after = pruned.readFloats(t);
          java.util.regex.Matcher layer =
              java.util.regex.Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.weight").matcher(t);
          boolean target =
              layer.matches()
                  && LinearGroups.compressible(c, Integer.parseInt(layer.group(1)))
                      .contains(layer.group(2));
          if (!target) {
            // embeddings, norms (q/k norms too), biases, head and the router: bit for bit
            assertArrayEquals(before, after, name + " " + t);
            continue;
          }
          int cols = (int) src.info(t).shape()[1];
          for (int r = 0; r < before.length / cols; r++) {
            int zeros = 0;
            for (int j = 0; j < cols; j++) {
              float v = after[r * cols + j];
              zeros += v == 0f ? 1 : 0;
              assertTrue(v == 0f || v == before[r * cols + j], name + " " + t);
            }
            assertEquals(cols / 2, zeros, name + " " + t + " row " + r);
          }
        }
      }
      assertRoutedTokensAddUp(c, report.expertTokens());
      assertFiniteLogits(out, g);
    }
  }

  @Test
  void anExpertWithoutTokensIsReportedAndQuantizedWithoutStatistics() throws IOException {
    Path dir = tmp.resolve("unrouted");
    ModelConfig c;
    try (Golden g = new Golden("mixtral_moe");
        Transformer model = Transformer.load(g.dir, Device.cpu())) {
      c = model.config();
      // An all-zero router ties every expert for every token; ties go to the lower index, so
      // experts 0 and 1 get every token and experts 2 and 3 none (in both layers).
      for (int i = 0; i < c.numLayers(); i++) {
        NDArray router =
            model.parameters().get(Layout.layerPrefix(c, "", i) + Layout.router(c) + ".weight");
        router.subi(router);
      }
      model.save(dir, DType.F32, Map.of());
    }
    List<int[]> samples = samples(c);
    long all = 6L * SEQ;
    for (WeightQuantization.Method method :
        List.of(WeightQuantization.Method.GPTQ, WeightQuantization.Method.AWQ)) {
      Map<Integer, Map<String, float[]>> layers = new HashMap<>();
      LayerwiseQuantizer.Summary summary =
          LayerwiseQuantizer.run(
              dir,
              new WeightQuantization(method, 4, 0),
              samples,
              (layer, weights, q) -> layers.put(layer, new LinkedHashMap<>(weights)),
              ProgressListener.NONE);
      assertEquals(c.numLayers() * c.numExperts(), summary.expertTokens().size(), method.id());
      for (ExpertTokens e : summary.expertTokens()) {
        boolean routed = e.expert() < 2;
        assertEquals(routed ? all : 0, e.tokens(), method.id() + " " + e);
        assertEquals(routed, e.calibrated(), method.id() + " " + e);
      }
      assertEquals(2 * c.numLayers(), summary.uncalibratedExperts().size());
      WeightQuantization q = new WeightQuantization(method, 4, 0);
      RtnQuantizer rtn = new RtnQuantizer(4, q.symmetric(), q.groupSize());
      try (TensorSource src = Checkpoints.open(dir)) {
        for (int i = 0; i < c.numLayers(); i++) {
          for (Layout.Spec s : Layout.layer(c, i)) {
            for (float v : layers.get(i).get(s.name())) {
              assertTrue(Float.isFinite(v), method.id() + " " + s.name());
            }
          }
          for (int e = 2; e < 4; e++) {
            for (Layout.ExpertProj p : Layout.ExpertProj.values()) {
              String linear = Layout.expert(c, e, p);
              int[] shape = LinearGroups.shape(c, i, linear);
              float[] w = src.readFloats(Layout.layerPrefix(c, "", i) + linear + ".weight");
              // round-to-nearest on the same grid, no NaN, no all-zero "dead" expert
              assertArrayEquals(
                  rtn.quantize(w, shape[0], shape[1]).dequantize(),
                  layers.get(i).get(linear + ".weight"),
                  1e-6f,
                  method.id() + " layer " + i + " " + linear);
            }
          }
        }
      }
    }

    PruningReport wanda =
        Pruning.run(
            PruningSpec.of(PruningSpec.Method.WANDA, 0.5),
            dir,
            tmp.resolve("wanda"),
            () -> samples,
            Device.cpu());
    assertEquals(2 * c.numLayers(), wanda.uncalibratedExperts().size());
    for (ExpertTokens e : wanda.uncalibratedExperts()) {
      assertTrue(e.expert() >= 2 && e.tokens() == 0, e.toString());
    }
    new MagnitudePruner(PruningSpec.of(PruningSpec.Method.MAGNITUDE, 0.5))
        .prune(dir, tmp.resolve("magnitude"));
    try (TensorSource w = Checkpoints.open(tmp.resolve("wanda"));
        TensorSource mag = Checkpoints.open(tmp.resolve("magnitude"))) {
      for (int i = 0; i < c.numLayers(); i++) {
        for (int e = 0; e < 4; e++) {
          String t =
              Layout.layerPrefix(c, "", i)
                  + Layout.expert(c, e, Layout.ExpertProj.GATE)
                  + ".weight";
          boolean same = java.util.Arrays.equals(w.readFloats(t), mag.readFloats(t));
          // unrouted experts fall back to magnitude; routed ones are scored by their inputs
          assertEquals(e >= 2, same, t);
        }
      }
    }
  }

  private static int compressibleCount(ModelConfig c) {
    int n = 0;
    for (int i = 0; i < c.numLayers(); i++) {
      n += LinearGroups.compressible(c, i).size();
    }
    return n;
  }

  private static int sparseLayers(ModelConfig c) {
    int n = 0;
    for (int i = 0; i < c.numLayers(); i++) {
      n += c.moe() && c.sparseLayer(i) ? 1 : 0;
    }
    return n;
  }

  /**
   * One entry per expert of every sparse layer (none for a dense one), and every calibration token
   * of a sparse layer routed to k experts.
   */
  private static void assertRoutedTokensAddUp(ModelConfig c, List<ExpertTokens> experts) {
    assertEquals(sparseLayers(c) * c.numExperts(), experts.size(), experts.toString());
    for (int i = 0; i < c.numLayers(); i++) {
      long routed = 0;
      int entries = 0;
      for (ExpertTokens e : experts) {
        if (e.layer() == i) {
          routed += e.tokens();
          entries++;
        }
      }
      boolean sparse = c.moe() && c.sparseLayer(i);
      assertEquals(sparse ? c.numExperts() : 0, entries, "layer " + i);
      assertEquals(sparse ? 6L * SEQ * c.expertsPerToken() : 0, routed, "layer " + i);
    }
  }

  /**
   * AWQ scales only (no rounding) on a sparse layer: the router and shared_expert_gate untouched;
   * no scale into post_attention_layernorm (the router reads it), so the experts' and the shared
   * expert's gate are unchanged; the shared expert's down is scaled on every token, its up's rows
   * divided.
   */
  private static void assertSparseLayerScaling(
      ModelConfig c, int layer, Map<String, float[]> before, Map<String, float[]> after) {
    List<String> same = new java.util.ArrayList<>();
    same.add(Layout.router(c) + ".weight");
    same.add("post_attention_layernorm.weight");
    for (int e = 0; e < c.numExperts(); e++) {
      same.add(Layout.expert(c, e, Layout.ExpertProj.GATE) + ".weight");
    }
    if (Layout.hasSharedExpert(c)) {
      same.add(Layout.sharedExpertGate(c) + ".weight");
      same.add(Layout.sharedExpert(c, Layout.ExpertProj.GATE) + ".weight");
      for (Layout.ExpertProj p : List.of(Layout.ExpertProj.UP, Layout.ExpertProj.DOWN)) {
        String t = Layout.sharedExpert(c, p) + ".weight";
        assertFalse(
            java.util.Arrays.equals(before.get(t), after.get(t)), "layer " + layer + " " + t);
      }
    }
    for (String t : same) {
      assertArrayEquals(before.get(t), after.get(t), "layer " + layer + " " + t);
    }
  }

  private static void assertFiniteLogits(Path dir, Golden g) throws IOException {
    try (Transformer model = Transformer.load(dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      float[] logits = model.logits(m, g.inputIds(m)).toFloatArray();
      for (float v : logits) {
        assertTrue(Float.isFinite(v), g.name + ": non-finite logit");
      }
      assertFalse(logits.length == 0);
    }
  }
}
