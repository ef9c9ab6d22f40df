package dev.compactor.core.quant.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Forward;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Layer-by-layer against the whole model's forward; statistics against its activation hook. */
class CalibrationCollectorTest {

  static final ModelConfig CONFIG = ModelConfig.llama(50, 32, 64, 3, 4, 2, 64);

  @TempDir Path dir;

  static List<int[]> samples(int count, int seq, int vocab, long seed) {
    Random r = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] s = new int[seq];
      for (int t = 0; t < seq; t++) {
        s[t] = r.nextInt(vocab);
      }
      out.add(s);
    }
    return out;
  }

  static NDArray tokens(NDManager m, List<int[]> samples) {
    int seq = samples.get(0).length;
    int[] flat = new int[samples.size() * seq];
    for (int i = 0; i < samples.size(); i++) {
      System.arraycopy(samples.get(i), 0, flat, i * seq, seq);
    }
    return m.create(flat, new Shape(samples.size(), seq));
  }

  @Test
  void layerByLayerReproducesTheModelsLogits() throws IOException {
    try (Transformer model = Transformer.randomInit(CONFIG, 7, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      layerByLayerReproduces(model, tokens(m, samples(3, 10, CONFIG.vocabSize(), 1)), m);
    }
    // scaled RoPE (yarn: frequencies and attention factor) past the original context of 4
    ModelConfig yarn =
        CONFIG.with(
            "{\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":8.0,"
                + "\"original_max_position_embeddings\":4}}");
    try (Transformer model = Transformer.randomInit(yarn, 7, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      layerByLayerReproduces(model, tokens(m, samples(3, 10, yarn.vocabSize(), 1)), m);
    }
  }

  /**
   * Every family the forward runs but GPT-2, on the golden models (windows, q/k norms, experts).
   */
  @ParameterizedTest
  @MethodSource("decoderGoldens")
  void layerByLayerReproducesEachGoldenModel(String name) throws IOException {
    try (Golden g = new Golden(name);
        Transformer model = Transformer.load(g.dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      layerByLayerReproduces(model, g.inputIds(m), m);
    }
  }

  static Stream<String> decoderGoldens() {
    return Golden.CASES.stream().filter(n -> !n.startsWith("gpt2"));
  }

  /** {@link Forward#layer} over every layer, then the final norm and head, equals the logits. */
  private static void layerByLayerReproduces(Transformer model, NDArray tokens, NDManager m) {
    ModelConfig config = model.config();
    float[] expected = model.logits(m, tokens).toFloatArray();
    Forward forward = new Forward(config, "", m);
    Map<String, NDArray> p = model.parameters();
    NDArray x =
        p.get("model.embed_tokens.weight")
            .get(tokens.toType(ai.djl.ndarray.types.DataType.INT64, false));
    x.attach(m);
    for (int i = 0; i < config.numLayers(); i++) {
      Map<String, NDArray> layer = new HashMap<>();
      String prefix = model.layerPrefix(i);
      for (Map.Entry<String, NDArray> e : p.entrySet()) {
        if (e.getKey().startsWith(prefix)) {
          layer.put(e.getKey().substring(prefix.length()), e.getValue());
        }
      }
      x = forward.layer(m, i, layer, x, null);
    }
    NDArray eps = m.create((float) config.normEps());
    NDArray normed =
        x.div(x.square().mean(new int[] {2}, true).add(eps).sqrt()).mul(p.get("model.norm.weight"));
    String head = config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
    float[] got = Linear.linear(normed, p.get(head)).head().toFloatArray();
    assertArrayEquals(expected, got, 1e-4f, config.modelType());
  }

  @Test
  void statisticsEqualThoseOfTheModelsActivationHook() throws IOException {
    List<int[]> samples = samples(5, 12, CONFIG.vocabSize(), 2);
    Map<String, double[]> gram = new HashMap<>();
    Map<String, double[]> abs = new HashMap<>();
    try (Transformer model = Transformer.randomInit(CONFIG, 8, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      model.logits(
          m,
          tokens(m, samples),
          (layer, linear, input) -> {
            float[] x = input.toFloatArray();
            int cols = (int) input.getShape().get(1);
            double[] g = gram.computeIfAbsent(layer + linear, k -> new double[cols * cols]);
            double[] a = abs.computeIfAbsent(layer + linear, k -> new double[cols]);
            for (int t = 0; t < x.length / cols; t++) {
              for (int i = 0; i < cols; i++) {
                a[i] += Math.abs(x[t * cols + i]) / (x.length / cols);
                for (int j = 0; j < cols; j++) {
                  g[i * cols + j] += (double) x[t * cols + i] * x[t * cols + j];
                }
              }
            }
          });
      model.save(dir, DType.F32, Map.of());
    }
    List<String> events = new ArrayList<>();
    CalibrationCollector collector =
        new CalibrationCollector(
            CONFIG,
            layer -> LinearGroups.trueSequential(CONFIG, layer),
            CalibrationCollector.Propagation.QUANTIZED,
            true,
            2);
    try (TensorSource source = new RecordingSource(Checkpoints.open(dir), events)) {
      collector.run(
          source,
          samples,
          new LayerQuantizer() {
            @Override
            public void quantize(
                int layer,
                List<String> linears,
                Map<String, float[]> weights,
                Map<String, LinearStats> stats) {
              assertEquals(linears.size(), stats.size());
              for (String linear : linears) {
                LinearStats s = stats.get(linear);
                assertEquals(5 * 12, s.tokens());
                assertArrayEquals(gram.get(layer + linear), s.gram(), 2e-3 * max(s.gram()));
                assertArrayEquals(abs.get(layer + linear), s.meanAbs(), 1e-4);
                double[] h = s.hessian();
                assertEquals(2.0 / 60 * s.gram()[0], h[0], 1e-9);
              }
              if (linears.size() == 3) {
                assertSame(stats.get(linears.get(0)), stats.get(linears.get(2)));
              }
              events.add("quantize " + layer + " " + linears.get(0));
            }

            @Override
            public void layerDone(int layer, Map<String, float[]> weights) {
              events.add("done " + layer);
            }
          });
    }
    // Streaming: layer i+1's weights are read only after layer i is done.
    int done0 = events.indexOf("done 0");
    int firstLayer1 = -1;
    for (int i = 0; i < events.size(); i++) {
      if (events.get(i).startsWith("read model.layers.1.")) {
        firstLayer1 = i;
        break;
      }
    }
    assertTrue(done0 >= 0 && firstLayer1 > done0, events.toString());
    assertEquals(
        4 * CONFIG.numLayers(), events.stream().filter(e -> e.startsWith("quantize")).count());
  }

  @Test
  void quantizedWeightsFeedTheNextLayer() throws IOException {
    List<int[]> samples = samples(2, 8, CONFIG.vocabSize(), 3);
    try (Transformer model = Transformer.randomInit(CONFIG, 9, Device.cpu())) {
      model.save(dir, DType.F32, Map.of());
    }
    double[] seenQuantized = sumAbsOfLayer1(samples, CalibrationCollector.Propagation.QUANTIZED);
    double[] seenOriginal = sumAbsOfLayer1(samples, CalibrationCollector.Propagation.ORIGINAL);
    // The quantizer below zeroes layer 0's MLP, which changes layer 1's inputs only when the
    // quantized outputs are propagated.
    boolean differs = false;
    for (int j = 0; j < seenQuantized.length; j++) {
      differs |= Math.abs(seenQuantized[j] - seenOriginal[j]) > 1e-6;
    }
    assertTrue(differs);
  }

  private double[] sumAbsOfLayer1(List<int[]> samples, CalibrationCollector.Propagation p)
      throws IOException {
    double[][] seen = new double[1][];
    try (TensorSource source = Checkpoints.open(dir)) {
      new CalibrationCollector(CONFIG, layer -> LinearGroups.oneStage(CONFIG, layer), p, false, 1)
          .run(
              source,
              samples,
              (layer, linears, weights, stats) -> {
                if (layer == 0) {
                  java.util.Arrays.fill(weights.get("mlp.down_proj.weight"), 0f);
                } else if (layer == 1) {
                  seen[0] = stats.get("self_attn.q_proj").meanAbs();
                }
              });
    }
    return seen[0];
  }

  /**
   * Qwen MoE, dense and sparse layers mixed: with every linear of a layer in one stage the
   * collector's statistics of each linear (an expert's from its routed rows, the shared expert's
   * from every token) are those the whole model's activation hook sees, layer by layer; an expert
   * with fewer than {@link LinearGroups#minExpertTokens} routed tokens is marked uncalibrated with
   * its count kept.
   */
  @ParameterizedTest
  @ValueSource(strings = {"qwen2_moe_shared", "qwen3_moe_qk_norm"})
  void qwenMoeStatisticsEqualThoseOfTheModelsActivationHook(String name) throws IOException {
    List<int[]> samples;
    ModelConfig c;
    Map<String, double[]> gram = new HashMap<>();
    Map<String, Long> rows = new HashMap<>();
    try (Golden g = new Golden(name);
        Transformer model = Transformer.load(g.dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      c = model.config();
      samples = samples(5, 12, c.vocabSize(), 3);
      model.logits(
          m,
          tokens(m, samples),
          (layer, linear, input) -> {
            float[] x = input.toFloatArray();
            int cols = (int) input.getShape().get(1);
            double[] gr = gram.computeIfAbsent(layer + linear, k -> new double[cols * cols]);
            rows.merge(layer + linear, (long) (x.length / cols), Long::sum);
            for (int t = 0; t < x.length / cols; t++) {
              for (int i = 0; i < cols; i++) {
                for (int j = 0; j < cols; j++) {
                  gr[i * cols + j] += (double) x[t * cols + i] * x[t * cols + j];
                }
              }
            }
          });
      model.save(dir, DType.F32, Map.of());
    }
    ModelConfig config = c;
    List<Integer> seen = new ArrayList<>();
    CalibrationCollector collector =
        new CalibrationCollector(
            config,
            layer -> LinearGroups.oneStage(config, layer),
            CalibrationCollector.Propagation.ORIGINAL,
            true,
            2);
    try (TensorSource source = Checkpoints.open(dir)) {
      collector.run(
          source,
          samples,
          (layer, linears, weights, stats) -> {
            assertEquals(LinearGroups.compressible(config, layer), linears);
            for (String linear : linears) {
              LinearStats s = stats.get(linear);
              String key = layer + linear;
              long expected = rows.getOrDefault(key, 0L);
              assertEquals(expected, s.tokens(), key);
              LinearGroups.Group g = LinearGroups.groupOf(config, layer, linear);
              if (g.expert() < 0) {
                // dense MLP, attention and the shared expert: every token
                assertEquals(5 * 12, s.tokens(), key);
              }
              if (s.calibrated()) {
                assertArrayEquals(gram.get(key), s.gram(), 2e-3 * max(s.gram()), key);
              } else {
                assertTrue(g.expert() >= 0 && expected < LinearGroups.minExpertTokens(config));
              }
            }
            seen.add(layer);
          });
    }
    assertEquals(java.util.stream.IntStream.range(0, c.numLayers()).boxed().toList(), seen);
    boolean anySparse = false;
    for (int i = 0; i < c.numLayers(); i++) {
      long routed = 0;
      for (ExpertTokens e : collector.expertTokens()) {
        routed += e.layer() == i ? e.tokens() : 0;
      }
      assertEquals(c.sparseLayer(i) ? 5L * 12 * c.expertsPerToken() : 0, routed, "layer " + i);
      anySparse |= c.sparseLayer(i);
    }
    assertTrue(anySparse && !c.sparseLayer(0), name + " mixes dense and sparse layers");
  }

  @Test
  void refusesBadInput() {
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new CalibrationCollector(
                CONFIG,
                layer -> List.of(List.of("attn.c_attn")),
                CalibrationCollector.Propagation.QUANTIZED,
                true,
                1));
    ModelConfig gpt2 =
        ModelConfig.fromJson("{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_layer\":1,\"n_head\":4}");
    assertThrows(
        UnsupportedOperationException.class,
        () ->
            new CalibrationCollector(
                gpt2,
                layer -> LinearGroups.oneStage(CONFIG, layer),
                CalibrationCollector.Propagation.QUANTIZED,
                true,
                1));
  }

  private static double max(double[] a) {
    double m = 0;
    for (double v : a) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  /** Logs every tensor read, to check the order in which layers are streamed. */
  private record RecordingSource(TensorSource inner, List<String> events) implements TensorSource {
    @Override
    public List<String> names() {
      return inner.names();
    }

    @Override
    public dev.compactor.core.io.TensorInfo info(String name) {
      return inner.info(name);
    }

    @Override
    public java.nio.ByteBuffer raw(String name) throws IOException {
      events.add("read " + name);
      return inner.raw(name);
    }

    @Override
    public float[] readFloats(String name) throws IOException {
      events.add("read " + name);
      return inner.readFloats(name);
    }

    @Override
    public Map<String, String> metadata() {
      return inner.metadata();
    }

    @Override
    public void close() throws IOException {
      inner.close();
    }
  }
}
