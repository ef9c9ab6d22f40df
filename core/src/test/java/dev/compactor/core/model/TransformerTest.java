package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TransformerTest {

  static final ModelConfig LLAMA_GQA = ModelConfig.llama(61, 32, 48, 2, 4, 2, 64);
  static final ModelConfig GPT2 =
      ModelConfig.fromJson(
          "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":2,\"n_head\":4,"
              + "\"n_positions\":40}");

  @Test
  void decoderWithKvCacheGivesTheFullForwardLogits() {
    for (ModelConfig config : List.of(LLAMA_GQA, GPT2)) {
      try (Transformer model = Transformer.randomInit(config, 7, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        int[] ids = {3, 9, 1, 22, 5, 17, 8, 30, 2, 11};
        NDArray tokens = m.create(ids, new Shape(1, ids.length));
        float[] full = model.logits(m, tokens).toFloatArray();
        List<Float> stepped = new ArrayList<>();
        try (CausalLM.Decoder d = model.decoder(m, 1)) {
          NDArray first = d.step(tokens.get(new NDIndex(":, 0:4")));
          for (float f : first.toFloatArray()) {
            stepped.add(f);
          }
          for (int t = 4; t < ids.length; t++) {
            for (float f : d.step(tokens.get(new NDIndex(":, {}:{}", t, t + 1))).toFloatArray()) {
              stepped.add(f);
            }
          }
          assertEquals(ids.length, d.position());
        }
        assertEquals(full.length, stepped.size());
        float maxErr = 0;
        for (int i = 0; i < full.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(full[i] - stepped.get(i)));
        }
        assertTrue(maxErr < 1e-5, config + ": cached decoding differs by " + maxErr);
      }
    }
  }

  @Test
  void slidingWindowLimitsHowFarBackAPositionSees() {
    ModelConfig mistral =
        ModelConfig.fromJson(
            LLAMA_GQA
                .toJson()
                .replace("\"llama\"", "\"mistral\"")
                .replace("{", "{\"sliding_window\":4,"));
    int layers = mistral.numLayers();
    // Each layer reaches back window - 1 positions, so the stack reaches layers * 3.
    int seq = layers * 3 + 2;
    try (Transformer model = Transformer.randomInit(mistral, 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      int[] a = new int[seq];
      int[] b = new int[seq];
      b[0] = 5;
      float[] la = model.logits(m, m.create(a, new Shape(1, seq))).toFloatArray();
      float[] lb = model.logits(m, m.create(b, new Shape(1, seq))).toFloatArray();
      int v = mistral.vocabSize();
      float first = 0;
      float last = 0;
      for (int j = 0; j < v; j++) {
        first = Math.max(first, Math.abs(la[j] - lb[j]));
        last = Math.max(last, Math.abs(la[(seq - 1) * v + j] - lb[(seq - 1) * v + j]));
      }
      assertTrue(first > 1e-4, "changing token 0 must change position 0, moved " + first);
      assertEquals(0f, last, "the last position is out of token 0's reach through the window");
    }
  }

  @Test
  void refusesSequencesBeyondContext() {
    try (Transformer model = Transformer.randomInit(GPT2, 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      assertThrows(
          IllegalArgumentException.class,
          () -> model.logits(m, m.create(new int[41], new Shape(1, 41))));
    }
  }

  @Test
  void observerSeesEveryLinearInputOfEveryLayer() {
    try (Transformer model = Transformer.randomInit(LLAMA_GQA, 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      List<String> seen = new ArrayList<>();
      NDArray tokens = m.create(new int[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3));
      model.logits(
          m,
          tokens,
          (layer, name, input) -> {
            seen.add(layer + ":" + name);
            long in = name.equals("mlp.down_proj") ? 48 : 32;
            assertArrayEquals(new long[] {6, in}, input.getShape().getShape());
          });
      assertEquals(14, seen.size());
      assertEquals("0:self_attn.q_proj", seen.get(0));
      assertEquals("1:mlp.down_proj", seen.get(13));
    }
  }

  @Test
  void greedyGenerationIsDeterministicAndRespectsContext() {
    try (Transformer model = Transformer.randomInit(GPT2, 3, Device.cpu())) {
      int[] a = Generation.generate(model, new int[] {1, 2, 3}, 5, GenerationSettings.greedy());
      int[] b = Generation.generate(model, new int[] {1, 2, 3}, 5, GenerationSettings.greedy());
      assertArrayEquals(a, b);
      assertEquals(5, a.length);
      try (NDManager m = NDManager.newBaseManager()) {
        float[] last =
            model
                .logits(m, m.create(new int[] {1, 2, 3}, new Shape(1, 3)))
                .get(new NDIndex("0, 2"))
                .toFloatArray();
        int argmax = 0;
        for (int i = 1; i < last.length; i++) {
          argmax = last[i] > last[argmax] ? i : argmax;
        }
        assertEquals(argmax, a[0], "greedy picks the argmax of the full forward");
      }
      int[] sampled =
          Generation.generate(model, new int[] {1, 2, 3}, 100, new GenerationSettings(1.0, 5, 42));
      assertEquals(37, sampled.length);
    }
  }

  @Test
  void saveThenLoadGivesTheSameModel(@TempDir Path tmp) throws Exception {
    ModelConfig tied = LLAMA_GQA.with("{\"tie_word_embeddings\":true,\"custom_field\":7}");
    for (ModelConfig config : List.of(tied, GPT2)) {
      try (Transformer model = Transformer.randomInit(config, 11, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        NDArray tokens = m.create(new int[] {1, 5, 9, 2, 7, 3}, new Shape(2, 3));
        float[] expected = model.logits(m, tokens).toFloatArray();
        Path f32 = tmp.resolve(config.modelType() + "-f32");
        Path bf16 = tmp.resolve(config.modelType() + "-bf16");
        model.save(f32, DType.F32, Map.of("producer", "test"));
        model.save(bf16, DType.BF16, Map.of());
        Path f16 = tmp.resolve(config.modelType() + "-f16");
        model.save(f16, DType.F16, Map.of());
        try (Transformer half = Transformer.load(f16, Device.cpu())) {
          float[] approx = half.logits(m, tokens).toFloatArray();
          assertTrue(GoldenModelTest.maxAbs(expected, approx) < 1e-3);
        }
        try (Transformer again = Transformer.load(f32, Device.cpu());
            Transformer rounded = Transformer.load(bf16, Device.cpu())) {
          assertArrayEquals(expected, again.logits(m, tokens).toFloatArray());
          assertEquals(model.parameters().keySet(), again.parameters().keySet());
          float[] approx = rounded.logits(m, tokens).toFloatArray();
          assertTrue(GoldenModelTest.maxAbs(expected, approx) < 1e-2);
          assertTrue(GoldenModelTest.maxAbs(expected, approx) > 0, "bf16 must round");
        }
        ModelConfig reread = ModelConfig.read(bf16);
        assertTrue(reread.toJson().contains("\"torch_dtype\" : \"bfloat16\""), reread.toJson());
        if (config == tied) {
          assertTrue(reread.toJson().contains("custom_field"));
        }
      }
    }
  }

  @Test
  void mismatchedCheckpointGivesATypedErrorNamingTheTensor(@TempDir Path tmp) throws Exception {
    try (Transformer model = Transformer.randomInit(LLAMA_GQA, 2, Device.cpu())) {
      model.save(tmp, DType.F32, Map.of());
    }
    ModelConfig wider = LLAMA_GQA.with("{\"intermediate_size\":64}");
    try (TensorSource source = Checkpoints.open(tmp)) {
      String msg =
          assertThrows(
                  CheckpointFormatException.class,
                  () -> Transformer.load(wider, source, Device.cpu()))
              .getMessage();
      assertTrue(
          msg.contains("model.layers.0.mlp.gate_proj.weight") && msg.contains("[64, 32]"), msg);
      ModelConfig tied = LLAMA_GQA.with("{\"tie_word_embeddings\":true,\"num_hidden_layers\":3}");
      msg =
          assertThrows(
                  CheckpointFormatException.class,
                  () -> StreamingTransformer.open(tied, source, Device.cpu()))
              .getMessage();
      assertTrue(msg.contains("model.layers.2."), msg);
    }
  }
}
