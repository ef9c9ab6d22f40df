package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.DType;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.UnsupportedModelException;
import dev.compactor.core.model.internal.Layout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** MoEfication end to end on a small random Llama (weights scaled up so the MLP matters). */
class MoefierTest {

  static final ModelConfig LLAMA = ModelConfig.llama(61, 32, 48, 2, 4, 2, 64);
  static final int[] IDS = {3, 9, 1, 22, 5, 17, 8, 30, 2, 11, 40, 7};

  /** Random init with every linear scaled so activations are O(1) rather than O(0.02). */
  static Transformer model(long seed) {
    Transformer t = Transformer.randomInit(LLAMA, seed, Device.cpu());
    for (Map.Entry<String, NDArray> e : t.parameters().entrySet()) {
      if (e.getValue().getShape().dimension() == 2 && !e.getKey().contains("embed")) {
        e.getValue().muli(15f);
      }
    }
    return t;
  }

  static float[] logits(CausalLM model) {
    try (NDManager m = NDManager.newBaseManager()) {
      return model.logits(m, m.create(IDS, new Shape(1, IDS.length))).toFloatArray();
    }
  }

  static double maxDiff(float[] a, float[] b) {
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  static int[] randomOrder(int n, Random r) {
    List<Integer> l = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      l.add(i);
    }
    java.util.Collections.shuffle(l, r);
    return l.stream().mapToInt(Integer::intValue).toArray();
  }

  /** A plan with random neuron orders and random routers for {@code ks}. */
  static Moefier.Plan randomPlan(int experts, int[] ks, long seed) {
    Random r = new Random(seed);
    List<Moefier.LayerPlan> layers = new ArrayList<>();
    for (int i = 0; i < LLAMA.numLayers(); i++) {
      Map<Integer, float[]> routers = new java.util.HashMap<>();
      for (int k : ks) {
        routers.put(k, MoefiedMlpTest.gaussian(r, experts * LLAMA.hiddenSize(), 1));
      }
      layers.add(
          new Moefier.LayerPlan(
              randomOrder(LLAMA.intermediateSize(), r),
              routers,
              Map.of(),
              Map.of(),
              Map.of(),
              Map.of(),
              Map.of()));
    }
    return new Moefier.Plan(experts, layers, 0, 0);
  }

  @Test
  void permutingTheMlpNeuronsLeavesTheDenseLogitsUnchanged() {
    try (Transformer model = model(1)) {
      float[] before = logits(model);
      Random r = new Random(4);
      int h = LLAMA.hiddenSize();
      int inter = LLAMA.intermediateSize();
      for (int i = 0; i < LLAMA.numLayers(); i++) {
        int[] order = randomOrder(inter, r);
        for (String proj : List.of("mlp.gate_proj.weight", "mlp.up_proj.weight")) {
          NDArray w = model.parameters().get(model.layerPrefix(i) + proj);
          float[] v = Moefier.permuteRows(w.toFloatArray(), h, order);
          w.set(new NDIndex(":"), w.getManager().create(v, w.getShape()));
        }
        NDArray d = model.parameters().get(model.layerPrefix(i) + "mlp.down_proj.weight");
        float[] v = Moefier.permuteColumns(d.toFloatArray(), inter, order);
        if (i == 0) {
          float[] after = logits(model);
          assertTrue(
              maxDiff(before, after) > 1e-2,
              "gate/up permuted without down_proj must change the logits; the check could not"
                  + " fail otherwise: "
                  + maxDiff(before, after));
        }
        d.set(new NDIndex(":"), d.getManager().create(v, d.getShape()));
      }
      double diff = maxDiff(before, logits(model));
      assertTrue(diff <= 1e-5, "permuted dense logits moved by " + diff);
    }
  }

  @Test
  void allExpertsSelectedEqualsTheDenseModelAndFewerDoNot(@TempDir Path tmp) throws Exception {
    int experts = 4;
    Moefier.Plan plan = randomPlan(experts, new int[] {1, 4}, 3);
    try (Transformer dense = model(2)) {
      float[] want = logits(dense);
      Moefier.write(dense, plan, 4, tmp.resolve("k4"), DType.F32, Map.of());
      Moefier.write(dense, plan, 1, tmp.resolve("k1"), DType.F32, Map.of());
      try (Transformer all = Transformer.load(tmp.resolve("k4"), Device.cpu());
          Transformer one = Transformer.load(tmp.resolve("k1"), Device.cpu())) {
        assertEquals(4, all.config().moeficationExperts());
        assertEquals(4, all.config().moeficationTopK());
        assertTrue(
            all.parameters()
                .containsKey("model.layers.1." + Layout.MOEFICATION_ROUTER + ".weight"));
        double diff = maxDiff(want, logits(all));
        assertTrue(diff <= 1e-5, "k = E differs from the dense model by " + diff);
        double sparse = maxDiff(want, logits(one));
        assertTrue(sparse > 1e-2, "k = 1 of 4 should change the logits, moved " + sparse);
      }
    }
  }

  @Test
  void sparseModelAgreesResidentStreamingAndWithKvCache(@TempDir Path tmp) throws Exception {
    Moefier.Plan plan = randomPlan(4, new int[] {2}, 5);
    try (Transformer dense = model(3)) {
      Moefier.write(dense, plan, 2, tmp, DType.F32, Map.of());
    }
    try (Transformer resident = Transformer.load(tmp, Device.cpu());
        StreamingTransformer streaming = StreamingTransformer.open(tmp, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      float[] full = logits(resident);
      assertTrue(maxDiff(full, logits(streaming)) <= 1e-5, "streaming differs");
      NDArray tokens = m.create(IDS, new Shape(1, IDS.length));
      List<Float> stepped = new ArrayList<>();
      try (CausalLM.Decoder d = resident.decoder(m, 1)) {
        for (float f : d.step(tokens.get(new NDIndex(":, 0:5"))).toFloatArray()) {
          stepped.add(f);
        }
        for (int t = 5; t < IDS.length; t++) {
          for (float f : d.step(tokens.get(new NDIndex(":, {}:{}", t, t + 1))).toFloatArray()) {
            stepped.add(f);
          }
        }
      }
      float[] s = new float[stepped.size()];
      for (int i = 0; i < s.length; i++) {
        s[i] = stepped.get(i);
      }
      assertTrue(maxDiff(full, s) <= 1e-5, "KV-cache decoding differs by " + maxDiff(full, s));
    }
  }

  @Test
  void observersSeeTheDenseInputsAndTheRoutedActivation(@TempDir Path tmp) throws Exception {
    Moefier.Plan plan = randomPlan(4, new int[] {1}, 6);
    try (Transformer dense = model(5)) {
      Moefier.write(dense, plan, 1, tmp, DType.F32, Map.of());
    }
    try (Transformer moefied = Transformer.load(tmp, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      Map<String, float[]> seen = new java.util.HashMap<>();
      moefied.logits(
          m,
          m.create(IDS, new Shape(1, IDS.length)),
          (layer, name, input) -> {
            if (layer == 0) {
              seen.put(name, input.toFloatArray());
            }
          });
      assertTrue(
          seen.keySet().containsAll(List.of("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")));
      assertEquals(IDS.length * LLAMA.hiddenSize(), seen.get("mlp.gate_proj").length);
      float[] act = seen.get("mlp.down_proj");
      int inter = LLAMA.intermediateSize();
      assertEquals(IDS.length * inter, act.length);
      // k = 1 of 4: each token's activation is non-zero in exactly one slice of 12 neurons
      for (int t = 0; t < IDS.length; t++) {
        int live = 0;
        for (int e = 0; e < 4; e++) {
          boolean any = false;
          for (int j = e * 12; j < (e + 1) * 12; j++) {
            any |= act[t * inter + j] != 0;
          }
          live += any ? 1 : 0;
        }
        assertEquals(1, live, "token " + t + " has " + live + " live expert slices");
      }
    }
  }

  @Test
  void planClustersIntoEqualExpertsDeterministicallyAndTrainsRouters() {
    Random r = new Random(8);
    List<int[]> train = new ArrayList<>();
    List<int[]> held = new ArrayList<>();
    for (int w = 0; w < 12; w++) {
      int[] ids = new int[32];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = r.nextInt(LLAMA.vocabSize());
      }
      (w < 10 ? train : held).add(ids);
    }
    try (Transformer dense = model(4)) {
      for (Moefier.Clustering clustering : Moefier.Clustering.values()) {
        checkPlan(dense, train, held, clustering);
      }
    }
  }

  private static void checkPlan(
      Transformer dense, List<int[]> train, List<int[]> held, Moefier.Clustering clustering) {
    Moefier.Settings s =
        new Moefier.Settings(
            clustering, 4, new int[] {1, 2, 4}, 200, 20, RouterTrainer.Settings.defaults(1), 7);
    Moefier.Plan a = Moefier.plan(dense, train, held, s, ProgressListener.NONE);
    Moefier.Plan b = Moefier.plan(dense, train, held, s, ProgressListener.NONE);
    assertEquals(320, a.trainTokens());
    assertEquals(64, a.heldOutTokens());
    for (int i = 0; i < LLAMA.numLayers(); i++) {
      int[] order = a.layers().get(i).order();
      int[] sorted = order.clone();
      java.util.Arrays.sort(sorted);
      for (int j = 0; j < sorted.length; j++) {
        assertEquals(j, sorted[j], clustering + ": the order must be a permutation");
      }
      assertArrayEquals(order, b.layers().get(i).order(), clustering + ": same seed, same split");
      for (int k : new int[] {1, 2}) {
        Moefier.LayerPlan l = a.layers().get(i);
        assertTrue(l.lastLoss().get(k) < l.firstLoss().get(k), "router loss must fall");
        double recall = l.heldOutRecall().get(k);
        assertTrue(recall >= 0 && recall <= 1, "recall " + recall);
        double oracle = l.oracleMass().get(k);
        double routed = l.routedMass().get(k);
        assertTrue(
            routed <= oracle + 1e-9 && oracle <= 1 && routed >= k / 4.0 * 0.5,
            clustering + ": mass shares " + routed + " / " + oracle);
      }
      assertEquals(1.0, a.layers().get(i).heldOutRecall().get(4));
    }
  }

  @Test
  void unsupportedModelsAreRefused() {
    String field = "{\"compactor_moefication\":{\"num_experts\":4,\"experts_per_token\":1}}";
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":2,\"n_head\":4}");
    for (ModelConfig c :
        List.of(
            gpt2,
            LLAMA.with("{\"model_type\":\"phi3\"}"),
            LLAMA.with("{\"model_type\":\"mixtral\",\"num_local_experts\":2}"),
            LLAMA.with("{\"mlp_bias\":true}"))) {
      UnsupportedModelException e =
          assertThrows(UnsupportedModelException.class, () -> c.with(field), c.modelType());
      assertTrue(e.getMessage().startsWith("not supported yet"), e.getMessage());
    }
    assertThrows(
        IllegalArgumentException.class,
        () -> LLAMA.with(field.replace("\"num_experts\":4", "\"num_experts\":5")));
    assertThrows(
        IllegalArgumentException.class,
        () -> LLAMA.with(field.replace("\"experts_per_token\":1", "\"experts_per_token\":5")));
    ModelConfig ok = LLAMA.with(field);
    assertEquals(LLAMA.parameterCount() + 2L * 4 * 32, ok.parameterCount());
    assertThrows(UnsupportedOperationException.class, () -> Moefier.moefiedConfig(ok, 4, 1));
  }

  @Test
  void flopsFollowTheShapes() {
    long dense = MoeFlops.denseMlp(LLAMA);
    assertEquals(2L * 3 * 32 * 48, dense);
    assertEquals(2L * 32 * 4 + dense / 4, MoeFlops.moefiedMlp(LLAMA, 4, 1));
    // q 32, k/v 16 each, o 32 wide; head 61 x 32
    long attention = 2L * 32 * (32 + 32) + 2L * 32 * 32;
    assertEquals(2 * (attention + dense) + 2L * 32 * 61, MoeFlops.total(LLAMA, dense));
  }
}
