package dev.compactor.core.prune.depth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Depth pruning end to end on small random Llamas: an exact identity layer is scored BI = 0, is the
 * one both methods drop, and the pruned model computes the same logits with one layer fewer; kept
 * layers are renumbered densely and config.json follows; mixtures of experts are refused.
 */
class DepthPrunerTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  /**
   * A random model (weights scaled up so every layer visibly changes the hidden states), stored
   * F32, with the tensors {@code zero} selects set to zero.
   */
  private static Path write(ModelConfig c, Path dir, Predicate<String> zero) throws IOException {
    try (Transformer model = Transformer.randomInit(c, 17, Device.cpu());
        SafetensorsWriter w = new SafetensorsWriter(dir, Map.of("source", "test"))) {
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        float[] v = e.getValue().toFloatArray();
        boolean norm = e.getKey().endsWith("norm.weight");
        for (int i = 0; i < v.length; i++) {
          v[i] = zero.test(e.getKey()) ? 0f : norm ? v[i] : 10 * v[i];
        }
        w.write(e.getKey(), DType.F32, e.getValue().getShape().getShape(), v);
      }
    }
    Files.writeString(dir.resolve("config.json"), c.toJson());
    Files.writeString(dir.resolve("tokenizer.json"), TestModels.TOKENIZER_JSON);
    return dir;
  }

  private static List<int[]> windows(int count, int length, int vocab, long seed) {
    Random r = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] w = new int[length];
      for (int t = 0; t < length; t++) {
        w[t] = r.nextInt(vocab);
      }
      out.add(w);
    }
    return out;
  }

  private static float[] logits(Path dir, int[] tokens) throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu());
        NDManager manager = NDManager.newBaseManager(Device.cpu())) {
      long[] ids = new long[tokens.length];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = tokens[i];
      }
      return m.logits(manager, manager.create(ids, new Shape(1, ids.length))).toFloatArray();
    }
  }

  @Test
  void anIdentityLayerScoresZeroIsDroppedByBothMethodsAndTheLogitsStayTheSame() throws Exception {
    ModelConfig c = TestModels.tinyLlama(4);
    Path dense =
        write(
            c,
            tmp.resolve("dense"),
            name ->
                name.equals("model.layers.2.self_attn.o_proj.weight")
                    || name.equals("model.layers.2.mlp.down_proj.weight"));
    List<int[]> windows = windows(6, 16, c.vocabSize(), 5);
    List<Integer> progress = new ArrayList<>();
    DepthScores s =
        DepthPruning.score(dense, windows, 3, TokenPositions.ALL, (i, n, bi) -> progress.add(i));
    assertEquals(List.of(0, 1, 2, 3), progress);
    assertEquals(6L * 16, s.vectors());
    assertEquals(0.0, s.blockInfluence()[2], "layer 2 returns its input unchanged");
    assertEquals(0.0, s.angular(2, 1));
    for (int i : new int[] {0, 1, 3}) {
      assertTrue(s.blockInfluence()[i] > 1e-4, "layer " + i + " BI " + s.blockInfluence()[i]);
    }
    int[] tokens = windows(1, 20, c.vocabSize(), 9).get(0);
    float[] before = logits(dense, tokens);
    for (DepthMethod method : DepthMethod.values()) {
      Path out = tmp.resolve(method.key());
      DepthPruning.Result r =
          DepthPruning.run(
              dense,
              out,
              method,
              1,
              windows,
              TokenPositions.ALL,
              DepthScorer.Progress.NONE,
              Map.of());
      assertArrayEquals(new int[] {2}, r.removed(), method.key());
      assertEquals(3, ModelConfig.read(out).numLayers());
      float[] after = logits(out, tokens);
      assertEquals(before.length, after.length);
      double worst = 0;
      for (int i = 0; i < before.length; i++) {
        worst = Math.max(worst, Math.abs(before[i] - after[i]));
      }
      assertTrue(worst <= 1e-5, method.key() + ": max |logit diff| " + worst);
      assertEquals("[2]", r.toJson().get("removed_layers").toString());
    }
  }

  @Test
  void keptLayersAreRenumberedDenselyAndCopiedByteForByte() throws Exception {
    ModelConfig c = TestModels.tinyLlama(5);
    Path dense = write(c, tmp.resolve("dense5"), name -> false);
    Path out = tmp.resolve("pruned");
    DepthPruner.prune(dense, out, new int[] {1, 3}, Map.of("compactor.prune.method", "depth"));
    int[] oldOf = {0, 2, 4};
    try (TensorSource in = Checkpoints.open(dense);
        TensorSource pruned = Checkpoints.open(out)) {
      int expected =
          in.names().size()
              - 2 * (int) in.names().stream().filter(n -> n.startsWith("model.layers.1.")).count();
      assertEquals(expected, pruned.names().size());
      for (String name : pruned.names()) {
        String source = name;
        if (name.startsWith("model.layers.")) {
          String[] parts = name.split("\\.", 4);
          int layer = Integer.parseInt(parts[2]);
          assertTrue(layer < 3, name);
          source = "model.layers." + oldOf[layer] + "." + parts[3];
        }
        assertEquals(in.info(source).dtype(), pruned.info(name).dtype());
        assertEquals(TestModels.bytes(in.raw(source)), TestModels.bytes(pruned.raw(name)), name);
      }
      assertEquals("[1, 3]", pruned.metadata().get("compactor.prune.depth.removed_layers"));
      assertEquals("depth", pruned.metadata().get("compactor.prune.method"));
    }
    var config = JSON.readTree(out.resolve("config.json").toFile());
    assertEquals(3, config.get("num_hidden_layers").asInt());
    assertEquals(c.vocabSize(), config.get("vocab_size").asInt());
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    // the pruned model loads and runs in the project's forward
    assertEquals(c.vocabSize() * 7, logits(out, new int[] {1, 2, 3, 4, 5, 6, 7}).length);
  }

  @Test
  void theShippedTinyLlamaWithoutALayerExportsToGguf() throws Exception {
    Path out = tmp.resolve("tiny-3");
    DepthPruner.prune(TinyReferenceModel.shipped(), out, new int[] {1}, Map.of());
    Path gguf = tmp.resolve("tiny-3.gguf");
    try (TensorSource src = Checkpoints.open(out)) {
      LlamaGgufExporter.export(
          JSON.readTree(out.resolve("config.json").toFile()),
          src,
          JSON.readTree(out.resolve("tokenizer.json").toFile()),
          JSON.readTree(out.resolve("tokenizer_config.json").toFile()),
          MissingNode.getInstance(),
          LlamaGgufExporter.Options.of("tiny-3", LlamaFileType.F32),
          gguf);
    }
    try (GgufReader r = GgufReader.open(gguf)) {
      assertEquals(3L, r.metadata().get("llama.block_count").asLong());
      List<String> names = r.tensors().stream().map(GgufTensorInfo::name).toList();
      assertTrue(names.contains("blk.2.ffn_down.weight"), names.toString());
      assertFalse(names.stream().anyMatch(n -> n.startsWith("blk.3.")), names.toString());
    }
  }

  @Test
  void perLayerConfigListsFollowTheKeptLayers() {
    ModelConfig mistral =
        TestModels.tinyLlama(4)
            .with(
                "{\"model_type\":\"mistral\",\"sliding_window\":8,\"layer_types\":"
                    + "[\"sliding_attention\",\"full_attention\",\"sliding_attention\","
                    + "\"full_attention\"]}");
    var raw = readTree(mistral.toJson());
    var out = DepthPruner.prunedConfig(raw, mistral, new int[] {0, 3});
    assertEquals(2, out.get("num_hidden_layers").asInt());
    assertEquals("[\"full_attention\",\"sliding_attention\"]", out.get("layer_types").toString());
    ModelConfig pruned = ModelConfig.fromJson(out.toString());
    assertEquals(0, pruned.slidingWindow(0));
    assertEquals(8, pruned.slidingWindow(1));

    ModelConfig qwen =
        TestModels.tinyLlama(6).with("{\"model_type\":\"qwen2\",\"max_window_layers\":3}");
    var q = DepthPruner.prunedConfig(readTree(qwen.toJson()), qwen, new int[] {1, 4});
    // layers 0, 2 (below 3) stay below; 3, 5 stay at or above
    assertEquals(2, q.get("max_window_layers").asInt());
    assertEquals(4, q.get("num_hidden_layers").asInt());

    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> DepthPruner.prunedConfig(readTree(qwen.toJson()), qwen, new int[] {4, 1}));
    assertTrue(e.getMessage().contains("ascending"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () ->
            DepthPruner.prunedConfig(readTree(qwen.toJson()), qwen, new int[] {0, 1, 2, 3, 4, 5}));
  }

  @Test
  void mixturesOfExpertsAreRefusedBeforeAnyCalibration() throws Exception {
    ModelConfig mixtral =
        ModelConfig.fromJson(
            "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
                + "\"vocab_size\":64,\"hidden_size\":32,\"intermediate_size\":24,"
                + "\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                + "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,"
                + "\"num_local_experts\":4,\"num_experts_per_tok\":2,"
                + "\"tie_word_embeddings\":false,\"sliding_window\":null}");
    Path dir = write(mixtral, tmp.resolve("mixtral"), name -> false);
    var e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                DepthPruning.run(
                    dir,
                    tmp.resolve("out"),
                    DepthMethod.BLOCK_INFLUENCE,
                    1,
                    List.of(),
                    TokenPositions.ALL,
                    DepthScorer.Progress.NONE,
                    Map.of()));
    assertTrue(
        e.getMessage()
            .startsWith("not supported yet: depth pruning of the mixture-of-experts model mixtral"),
        e.getMessage());
    assertFalse(Files.exists(tmp.resolve("out")));
  }

  private static com.fasterxml.jackson.databind.JsonNode readTree(String json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
