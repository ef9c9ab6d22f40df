package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class ModelConfigTest {

  private static final String LLAMA =
      "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":100,"
          + "\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
          + "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"rms_norm_eps\":1e-5,"
          + "\"max_position_embeddings\":128,\"torch_dtype\":\"bfloat16\",\"bos_token_id\":1}";

  @Test
  void parsesLlamaWithDefaults() {
    ModelConfig c = ModelConfig.fromJson(LLAMA);
    assertEquals(ModelConfig.Family.LLAMA, c.family());
    assertEquals(8, c.headDim());
    assertEquals(2, c.numKvHeads());
    assertEquals(10000.0, c.ropeTheta());
    assertFalse(c.tieWordEmbeddings());
    assertFalse(c.qkvBias());
    assertEquals(1e-5, c.normEps());
  }

  @Test
  void qwen2HasQkvBiasButNoOutputBias() {
    ModelConfig c = ModelConfig.fromJson(LLAMA.replace("\"llama\"", "\"qwen2\""));
    assertTrue(c.qkvBias());
    assertFalse(c.outputBias());
    ModelConfig llamaBias = ModelConfig.fromJson(LLAMA).with("{\"attention_bias\":true}");
    assertTrue(llamaBias.qkvBias());
    assertTrue(llamaBias.outputBias());
  }

  @Test
  void qwen3HasQkNormsAndItsOwnHeadDim() {
    ModelConfig c =
        ModelConfig.fromJson(LLAMA.replace("\"llama\"", "\"qwen3\""))
            .with("{\"head_dim\":32,\"attention_bias\":false}");
    assertEquals(ModelConfig.Family.QWEN3, c.family());
    assertTrue(c.qkNorm());
    assertFalse(c.fusedProjections());
    assertEquals(32, c.headDim());
    assertFalse(c.qkvBias());
    // q [8*32, 64], k and v [2*32, 64], o [64, 256], two [32] norms per layer
    long perLayer = 2 * 64 + 64 * (256 + 128) + 256 * 64 + 3 * 64 * 96 + 2 * 32;
    assertEquals(2 * perLayer + 2 * 100 * 64 + 64, c.parameterCount());
  }

  @Test
  void phi3FusesProjectionsAndHasNoBiases() {
    ModelConfig c =
        ModelConfig.fromJson(LLAMA.replace("\"llama\"", "\"phi3\""))
            .with("{\"attention_bias\":true,\"mlp_bias\":true}");
    assertEquals(ModelConfig.Family.PHI3, c.family());
    assertTrue(c.fusedProjections());
    assertFalse(c.qkvBias());
    assertFalse(c.outputBias());
    assertFalse(c.mlpBias());
    for (String scaling : new String[] {"longrope", "su"}) {
      String msg =
          assertThrows(
                  UnsupportedModelException.class,
                  () -> c.with("{\"rope_scaling\":{\"type\":\"" + scaling + "\"}}"))
              .getMessage();
      assertTrue(msg.startsWith("not supported") && msg.contains(scaling), msg);
    }
    // Phi-3's attention rotates int(head_dim * f) leading dims (head_dim 8 here); llama's whole
    // head
    assertEquals(6, c.with("{\"partial_rotary_factor\":0.75}").ropeScaling().rotaryDim());
    assertEquals(8, c.ropeScaling().rotaryDim());
    String odd =
        assertThrows(
                IllegalArgumentException.class, () -> c.with("{\"partial_rotary_factor\":0.625}"))
            .getMessage();
    assertTrue(odd.contains("rotates 5 of 8 head dims; expected an even number >= 2"), odd);
    assertThrows(IllegalArgumentException.class, () -> c.with("{\"partial_rotary_factor\":1.5}"));
    String llama =
        assertThrows(
                UnsupportedModelException.class,
                () -> ModelConfig.fromJson(LLAMA).with("{\"partial_rotary_factor\":0.75}"))
            .getMessage();
    assertTrue(llama.contains("only phi3's attention rotates part of the head"), llama);
  }

  @Test
  void slidingWindowPerLayerAsHfDerivesLayerTypes() {
    ModelConfig mistral =
        ModelConfig.fromJson(LLAMA.replace("\"llama\"", "\"mistral\""))
            .with("{\"sliding_window\":16}");
    assertEquals(16, mistral.slidingWindow(0));
    assertEquals(16, mistral.slidingWindow(1));
    ModelConfig qwen =
        ModelConfig.fromJson(LLAMA.replace("\"llama\"", "\"qwen2\""))
            .with("{\"sliding_window\":16,\"max_window_layers\":1}");
    assertEquals(0, qwen.slidingWindow(1), "use_sliding_window is off by default");
    ModelConfig on = qwen.with("{\"use_sliding_window\":true}");
    assertEquals(0, on.slidingWindow(0));
    assertEquals(16, on.slidingWindow(1));
    ModelConfig defaultLayers = on.with("{\"max_window_layers\":null}");
    assertEquals(0, defaultLayers.slidingWindow(1), "HF's default max_window_layers is 28");
    ModelConfig types = on.with("{\"layer_types\":[\"sliding_attention\",\"full_attention\"]}");
    assertEquals(16, types.slidingWindow(0));
    assertEquals(0, types.slidingWindow(1));
    assertThrows(
        IllegalArgumentException.class, () -> on.with("{\"layer_types\":[\"full_attention\"]}"));
    ModelConfig noWindow = on.with("{\"sliding_window\":null}");
    assertEquals(0, noWindow.slidingWindow(1));
  }

  @Test
  void gpt2Defaults() {
    ModelConfig c =
        ModelConfig.fromJson("{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_layer\":2,\"n_head\":4}");
    assertEquals(ModelConfig.Family.GPT2, c.family());
    assertEquals(128, c.intermediateSize());
    assertEquals(50257, c.vocabSize());
    assertEquals(1024, c.maxPositions());
    assertTrue(c.tieWordEmbeddings());
  }

  @Test
  void llama32ConfigLoads() {
    // the fields of meta-llama/Llama-3.2-1B's config.json
    ModelConfig c =
        ModelConfig.fromJson(
            "{\"architectures\":[\"LlamaForCausalLM\"],\"attention_bias\":false,"
                + "\"attention_dropout\":0.0,\"bos_token_id\":128000,\"eos_token_id\":128001,"
                + "\"head_dim\":64,\"hidden_act\":\"silu\",\"hidden_size\":2048,"
                + "\"initializer_range\":0.02,\"intermediate_size\":8192,"
                + "\"max_position_embeddings\":131072,\"mlp_bias\":false,"
                + "\"model_type\":\"llama\",\"num_attention_heads\":32,"
                + "\"num_hidden_layers\":16,\"num_key_value_heads\":8,\"pretraining_tp\":1,"
                + "\"rms_norm_eps\":1e-05,\"rope_scaling\":{\"factor\":32.0,"
                + "\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
                + "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
                + "\"rope_theta\":500000.0,\"tie_word_embeddings\":true,"
                + "\"torch_dtype\":\"bfloat16\",\"transformers_version\":\"4.45.0.dev0\","
                + "\"use_cache\":true,\"vocab_size\":128256}");
    assertEquals(RopeScaling.Type.LLAMA3, c.ropeScaling().type());
    assertEquals(500000.0, c.ropeTheta());
    assertTrue(c.tieWordEmbeddings());
    assertEquals(131072, c.positionLimit());
    assertEquals(1_235_814_400L, c.parameterCount());
  }

  @Test
  void refusesWhatItCannotRun() {
    assertEquals(
        "not supported: bert",
        assertThrows(
                UnsupportedModelException.class,
                () -> ModelConfig.fromJson("{\"model_type\":\"bert\"}"))
            .getMessage());
    assertEquals(
        "not supported: rope_scaling.type=longrope",
        assertThrows(
                UnsupportedModelException.class,
                () ->
                    ModelConfig.fromJson(LLAMA)
                        .with("{\"rope_scaling\":{\"type\":\"longrope\",\"factor\":2}}"))
            .getMessage());
    assertEquals(
        "not supported: rope_scaling.finetuned=true",
        assertThrows(
                UnsupportedModelException.class,
                () ->
                    ModelConfig.fromJson(LLAMA)
                        .with(
                            "{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0,"
                                + "\"finetuned\":true}}"))
            .getMessage());
    assertEquals(
        RopeScaling.Type.LINEAR,
        ModelConfig.fromJson(LLAMA)
            .with("{\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}}")
            .ropeScaling()
            .type());
    assertThrows(
        UnsupportedModelException.class,
        () -> ModelConfig.fromJson(LLAMA).with("{\"hidden_act\":\"gelu\"}"));
    ModelConfig.fromJson(LLAMA).with("{\"rope_scaling\":null}");
    assertThrows(
        UnsupportedModelException.class,
        () ->
            ModelConfig.fromJson(LLAMA)
                .with("{\"architectures\":[\"LlamaForSequenceClassification\"]}"));
  }

  @Test
  void rejectsImpossibleShapesWithClearMessages() {
    String msg =
        assertThrows(
                IllegalArgumentException.class,
                () -> ModelConfig.fromJson(LLAMA).with("{\"num_key_value_heads\":3}"))
            .getMessage();
    assertTrue(msg.contains("multiple of num_key_value_heads 3"), msg);
    msg =
        assertThrows(
                IllegalArgumentException.class,
                () -> ModelConfig.fromJson(LLAMA).with("{\"hidden_size\":60}"))
            .getMessage();
    assertTrue(msg.contains("divisible"), msg);
    msg =
        assertThrows(
                IllegalArgumentException.class,
                () -> ModelConfig.fromJson(LLAMA).with("{\"vocab_size\":0}"))
            .getMessage();
    assertTrue(msg.contains("positive vocab_size"), msg);
    msg =
        assertThrows(
                IllegalArgumentException.class,
                () -> ModelConfig.fromJson(LLAMA.replace("\"vocab_size\":100,", "")))
            .getMessage();
    assertTrue(msg.contains("vocab_size"), msg);
  }

  @Test
  void toJsonRoundTripsUnknownFields() throws Exception {
    ModelConfig c = ModelConfig.fromJson(LLAMA);
    ObjectMapper json = new ObjectMapper();
    assertEquals(json.readTree(LLAMA), json.readTree(c.toJson()));
    ModelConfig again = ModelConfig.fromJson(c.toJson());
    assertEquals(c.toString(), again.toString());
    assertEquals("bfloat16", json.readTree(again.toJson()).get("torch_dtype").asText());
  }
}
