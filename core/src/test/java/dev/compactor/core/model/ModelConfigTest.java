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
