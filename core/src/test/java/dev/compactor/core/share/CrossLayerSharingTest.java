package dev.compactor.core.share;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.factorize.Factorization;
import dev.compactor.core.factorize.FactorizeSpec;
import dev.compactor.core.factorize.LowRankFactorizer;
import dev.compactor.core.factorize.RankRule;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SharedTensorSource;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole-model sharing on a small random Llama: the shared checkpoint stores fewer parameters
 * (counted from its safetensors header), its logits (resident, streamed, KV cache) equal those of
 * the input with the shared tensors copied dense by hand, {@code merge} writes it back without
 * references, and hostile {@code compactor_shared} maps are refused.
 */
class CrossLayerSharingTest {

  static final int[] TOKENS = {1, 5, 9, 2, 7, 3, 11, 4, 30, 8, 2, 6};
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path dir;
  static Path dense;

  @BeforeAll
  static void model() throws Exception {
    ModelConfig c = ModelConfig.llama(40, 32, 64, 4, 4, 2, 64);
    dense = dir.resolve("dense");
    try (Transformer t = Transformer.randomInit(c, 3, Device.cpu())) {
      // layers 1 and 2 of up_proj nearly equal: the planner should pair them first
      NDArray w1 = t.parameters().get("model.layers.1.mlp.up_proj.weight");
      NDArray w2 = t.parameters().get("model.layers.2.mlp.up_proj.weight");
      w2.set(w1.add(w2.mul(0.01f)).toFloatArray());
      t.save(dense, DType.F32, Map.of());
    }
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

  static long headerParameters(Path d) throws IOException {
    long n = 0;
    try (TensorSource s = Checkpoints.openStored(d)) {
      for (String name : s.names()) {
        n += s.info(name).numel();
      }
    }
    return n;
  }

  static Map<String, String> references(Path d) throws IOException {
    return SharedTensorSource.references(d);
  }

  /** The input model with every layer's linears set by hand from what {@code shared} stores. */
  static float[] handBuiltDenseLogits(Path shared, boolean basis) throws Exception {
    Map<String, String> refs = references(shared);
    ModelConfig c = ModelConfig.read(shared);
    try (Transformer t = Transformer.load(dense, Device.cpu());
        TensorSource stored = Checkpoints.openStored(shared)) {
      for (int i = 0; i < c.numLayers(); i++) {
        for (String linear : Layout.linears(c, i)) {
          String name = t.layerPrefix(i) + linear;
          NDArray w = t.parameters().get(name + ".weight");
          if (!basis) {
            String owner = refs.getOrDefault(name + ".weight", name + ".weight");
            w.set(stored.readFloats(owner));
            continue;
          }
          String u = refs.getOrDefault(name + ".u.weight", name + ".u.weight");
          String v = refs.getOrDefault(name + ".v.weight", name + ".v.weight");
          long[] s = w.getShape().getShape();
          w.set(
              LowRankFactorizer.product(
                  stored.readFloats(u),
                  stored.readFloats(v),
                  (int) s[0],
                  c.lowRank(name),
                  (int) s[1]));
        }
      }
      return logits(t);
    }
  }

  static void checkForwards(Path shared, float[] want, boolean all) throws Exception {
    try (Transformer t = Transformer.load(shared, Device.cpu())) {
      assertTrue(maxDiff(want, logits(t)) <= 1e-5, "resident " + maxDiff(want, logits(t)));
    }
    if (!all) {
      return;
    }
    try (StreamingTransformer s = StreamingTransformer.open(shared, Device.cpu())) {
      assertTrue(maxDiff(want, logits(s)) <= 1e-5, "streamed " + maxDiff(want, logits(s)));
    }
    try (Transformer t = Transformer.load(shared, Device.cpu());
        NDManager nd = NDManager.newBaseManager();
        CausalLM.Decoder dec = t.decoder(nd, 2)) {
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
      assertTrue(maxDiff(want, got) <= 1e-5, "KV cache " + maxDiff(want, got));
    }
  }

  @Test
  void sharedMatrixStoresFewerParametersAndRunsLikeItsDenseCopy() throws Exception {
    Path out = dir.resolve("matrix");
    CrossLayerSharing.Report r =
        CrossLayerSharing.run(
            new CrossLayerSharing.Spec(
                CrossLayerSharing.Form.MATRIX, 0.95, 4, BasisSharing.Side.OUT),
            dense,
            out);
    // 4 layers x (2 x 32x32 + 2 x 16x32 + 3 x 64x32): 4 x 9,216 = 36,864; 95 % = 35,020
    assertEquals(36_864, r.linearParametersBefore());
    assertTrue(r.linearParametersAfter() <= 35_020, "" + r.linearParametersAfter());
    assertEquals(headerParameters(out), r.parametersAfter());
    assertEquals(r.parametersBefore() - r.parametersAfter(), 36_864 - r.linearParametersAfter());
    assertTrue(r.bytesAfter() < r.bytesBefore());
    Map<String, String> refs = references(out);
    assertEquals(r.references(), refs.size());
    // the near-duplicate pair is shared first (cheapest error per parameter)
    assertEquals(
        "model.layers.1.mlp.up_proj.weight", refs.get("model.layers.2.mlp.up_proj.weight"));
    try (TensorSource stored = Checkpoints.openStored(out)) {
      for (String ref : refs.keySet()) {
        assertFalse(stored.contains(ref), ref + " stored");
      }
    }
    // the dense view: every layer tensor present, parameters as the model sees them
    assertEquals(headerParameters(dense), ModelDirectory.open(out).parameterCount());
    assertEquals(r.bytesAfter(), ModelDirectory.open(out).totalWeightBytes());
    checkForwards(out, handBuiltDenseLogits(out, false), true);
  }

  @Test
  void sharedBasisStoresEachBasisOnceAndRunsLikeItsDenseProducts() throws Exception {
    for (BasisSharing.Side side : BasisSharing.Side.values()) {
      Path out = dir.resolve("basis-" + side.key());
      CrossLayerSharing.Report r =
          CrossLayerSharing.run(
              new CrossLayerSharing.Spec(CrossLayerSharing.Form.BASIS, 0.5, 2, side), dense, out);
      assertTrue(r.linearParametersAfter() <= 36_864 / 2, "" + r.linearParametersAfter());
      assertEquals(headerParameters(out), r.parametersAfter());
      ModelConfig c = ModelConfig.read(out);
      // up_proj [64, 32] in groups of 2: out side floor(0.5 * 2 * 64 * 32 / (64 + 2 * 32)) = 16,
      // in side floor(0.5 * 2 * 64 * 32 / (32 + 2 * 64)) = 12
      int rank = c.lowRank("model.layers.1.mlp.up_proj");
      assertEquals(side == BasisSharing.Side.OUT ? 16 : 12, rank);
      String shared = side == BasisSharing.Side.OUT ? ".u.weight" : ".v.weight";
      Map<String, String> refs = references(out);
      assertEquals(
          "model.layers.2.mlp.up_proj" + shared, refs.get("model.layers.3.mlp.up_proj" + shared));
      assertEquals(2 * 7, refs.size());
      // streamed and cached forwards read the references the same way for both sides
      checkForwards(out, handBuiltDenseLogits(out, true), side == BasisSharing.Side.OUT);
      Path merged = dir.resolve("merged-" + side.key());
      assertEquals(14, CrossLayerSharing.merge(out, merged));
      assertTrue(references(merged).isEmpty());
      assertFalse(Files.readString(merged.resolve("config.json")).contains("compactor_"));
      assertEquals(headerParameters(dense), headerParameters(merged));
      try (Transformer a = Transformer.load(out, Device.cpu());
          Transformer b = Transformer.load(merged, Device.cpu())) {
        assertTrue(maxDiff(logits(a), logits(b)) <= 1e-5);
      }
    }
  }

  @Test
  void chooseSharesOnlyGroupsThatBeatPerLayerSvdOnWeightError() throws Exception {
    CrossLayerSharing.Report all =
        CrossLayerSharing.run(
            new CrossLayerSharing.Spec(
                CrossLayerSharing.Form.BASIS, 0.6, 2, BasisSharing.Side.IN, false),
            dense,
            dir.resolve("choose-all"));
    Path out = dir.resolve("choose");
    CrossLayerSharing.Report chosen =
        CrossLayerSharing.run(
            new CrossLayerSharing.Spec(
                CrossLayerSharing.Form.BASIS, 0.6, 2, BasisSharing.Side.IN, true),
            dense,
            out);
    ModelConfig c = ModelConfig.read(dense);
    int shared = 0;
    for (CrossLayerSharing.Group g : all.groups()) {
      List<CrossLayerSharing.Group> mine =
          chosen.groups().stream()
              .filter(
                  x -> x.linear().equals(g.linear()) && x.from() >= g.from() && x.to() <= g.to())
              .toList();
      if (mine.size() == 1) {
        assertEquals(g, mine.get(0));
        shared++;
        continue;
      }
      // split: each layer's own SVD, whose pooled error is below the shared basis's
      assertEquals(2, mine.size(), g.toString());
      double lost = 0;
      double energy = 0;
      try (TensorSource src = Checkpoints.open(dense)) {
        for (CrossLayerSharing.Group x : mine) {
          float[] w = src.readFloats("model.layers." + x.from() + "." + g.linear() + ".weight");
          double e = 0;
          for (float v : w) {
            e += (double) v * v;
          }
          lost += x.relativeError() * e;
          energy += e;
        }
      }
      assertTrue(lost / energy < g.relativeError(), g + " vs " + mine);
    }
    assertEquals(shared, chosen.references());
    assertEquals(chosen.references(), references(out).size());
    checkForwards(out, handBuiltDenseLogits(out, true), false);
    assertTrue(c.numLayers() == 4);
  }

  @Test
  void aStageReadsTheSharedModelDenseAndWritesNoReferences() throws Exception {
    Path out = dir.resolve("stage-in");
    CrossLayerSharing.run(
        new CrossLayerSharing.Spec(CrossLayerSharing.Form.MATRIX, 0.8, 4, BasisSharing.Side.OUT),
        dense,
        out);
    Path saved = dir.resolve("stage-saved");
    try (Transformer t = Transformer.load(out, Device.cpu())) {
      t.save(saved, DType.F32, Map.of());
    }
    assertTrue(references(saved).isEmpty());
    Path factorized = dir.resolve("stage-factorized");
    Factorization.run(
        new FactorizeSpec(FactorizeSpec.Method.SVD, RankRule.ratio(0.5), List.of(), false),
        out,
        factorized,
        null,
        null);
    assertTrue(references(factorized).isEmpty());
    try (Transformer t = Transformer.load(factorized, Device.cpu())) {
      assertEquals(TOKENS.length * 40, logits(t).length);
    }
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                CrossLayerSharing.run(
                    new CrossLayerSharing.Spec(
                        CrossLayerSharing.Form.MATRIX, 0.8, 4, BasisSharing.Side.OUT),
                    out,
                    dir.resolve("twice")));
    assertTrue(e.getMessage().contains("--merge"), e.getMessage());
  }

  /** A copy of {@code from} with config.json's compactor_shared replaced by {@code refs}. */
  static Path withReferences(Path from, String name, Map<String, String> refs) throws Exception {
    Path to = dir.resolve(name);
    Files.createDirectories(to);
    for (String f : List.of("model.safetensors", "config.json")) {
      Files.copy(from.resolve(f), to.resolve(f));
    }
    ObjectNode config = (ObjectNode) JSON.readTree(to.resolve("config.json").toFile());
    ObjectNode r = config.putObject(SharedTensorSource.KEY);
    refs.forEach(r::put);
    Files.writeString(to.resolve("config.json"), JSON.writeValueAsString(config));
    return to;
  }

  @Test
  void hostileReferencesAreRefused() throws Exception {
    Path base = dir.resolve("hostile-base");
    CrossLayerSharing.run(
        new CrossLayerSharing.Spec(CrossLayerSharing.Form.BASIS, 0.5, 2, BasisSharing.Side.OUT),
        dense,
        base);
    String u0 = "model.layers.0.mlp.up_proj.u.weight";
    String u1 = "model.layers.1.mlp.up_proj.u.weight";
    String u2 = "model.layers.2.mlp.up_proj.u.weight";
    String u3 = "model.layers.3.mlp.up_proj.u.weight";
    Map<String, Map<String, String>> cases =
        Map.of(
            "missing", Map.of(u1, "model.layers.9.mlp.up_proj.u.weight"),
            "cycle", Map.of(u1, u3, u3, u1),
            "chain", Map.of(u1, u3, u3, u2),
            "self", Map.of(u1, u1),
            "kind", Map.of(u1, "model.layers.0.mlp.down_proj.u.weight"),
            "global", Map.of(u1, "model.embed_tokens.weight"));
    Map<String, String> expect =
        Map.of(
            "missing", "which is not stored",
            "cycle", "no chains or cycles",
            "chain", "no chains or cycles",
            "self", "refers to itself",
            "kind", "the same tensor of another decoder layer",
            "global", "the same tensor of another decoder layer");
    for (Map.Entry<String, Map<String, String>> e : cases.entrySet()) {
      Path d = withReferences(base, "hostile-" + e.getKey(), e.getValue());
      CheckpointFormatException x =
          assertThrows(
              CheckpointFormatException.class, () -> Checkpoints.open(d).close(), e.getKey());
      assertTrue(x.getMessage().contains(expect.get(e.getKey())), x.getMessage());
      assertThrows(CheckpointFormatException.class, () -> Transformer.load(d, Device.cpu()));
    }
    // a reference whose owner has another shape: the loader says what it expected and found
    Path d = withReferences(base, "hostile-shape", Map.of(u1, u0));
    ObjectNode config = (ObjectNode) JSON.readTree(d.resolve("config.json").toFile());
    ((ObjectNode) config.get(ModelConfig.LOW_RANK)).put("model.layers.0.mlp.up_proj", 15);
    Files.writeString(d.resolve("config.json"), JSON.writeValueAsString(config));
    CheckpointFormatException x =
        assertThrows(CheckpointFormatException.class, () -> Transformer.load(d, Device.cpu()));
    assertTrue(x.getMessage().contains("expected shape"), x.getMessage());
    // not an object of strings
    Path bad = withReferences(base, "hostile-type", Map.of());
    Files.writeString(
        bad.resolve("config.json"),
        Files.readString(bad.resolve("config.json"))
            .replace("\"compactor_shared\":{}", "\"compactor_shared\":{\"" + u1 + "\":3}"));
    x = assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(bad).close());
    assertTrue(x.getMessage().contains("expected the owner tensor's name"), x.getMessage());
  }
}
