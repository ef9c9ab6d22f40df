package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The special-vocab part of the GGUF tokenizer metadata, on the hand-built Llama 2 style tokenizer
 * in src/test/resources/tokenizers/llama2, following llama.cpp's gguf-py SpecialVocab: ids named by
 * tokenizer_config.json first, then generation_config.json, then config.json.
 */
class LlamaTokenizerMetadataTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode resource(String path) throws Exception {
    Path p = Path.of(LlamaTokenizerMetadataTest.class.getResource(path).toURI());
    return JSON.readTree(p.toFile());
  }

  private static long u32(Map<String, GgufValue> md, String key) {
    return ((Number) md.get(key).value()).longValue();
  }

  @Test
  void chatTemplateAndSpecialIdsComeFromTokenizerConfig() throws Exception {
    JsonNode tokenizer = resource("/tokenizers/llama2/tokenizer.json");
    JsonNode tokConfig = resource("/tokenizers/llama2/tokenizer_config.json");
    // config.json's ids are deliberately different: tokenizer_config.json's token texts win.
    JsonNode config = JSON.readTree("{\"vocab_size\":12,\"bos_token_id\":5,\"eos_token_id\":6}");
    Map<String, GgufValue> md =
        LlamaTokenizerMetadata.from(tokenizer, config, true, tokConfig, MissingNode.getInstance());
    assertEquals("llama", md.get("tokenizer.ggml.model").value());
    assertEquals(
        tokConfig.path("chat_template").asText(), md.get("tokenizer.chat_template").value());
    assertEquals(1, u32(md, "tokenizer.ggml.bos_token_id"));
    assertEquals(2, u32(md, "tokenizer.ggml.eos_token_id"));
    assertEquals(true, md.get("tokenizer.ggml.add_bos_token").value());
  }

  @Test
  void generationConfigIdsWinOverConfigJsonWhenTokenizerConfigNamesNone() throws Exception {
    JsonNode tokenizer = resource("/tokenizers/llama2/tokenizer.json");
    JsonNode config = JSON.readTree("{\"vocab_size\":12,\"bos_token_id\":5,\"eos_token_id\":6}");
    JsonNode gen = JSON.readTree("{\"bos_token_id\":1,\"eos_token_id\":[2,7]}");
    JsonNode tokConfig = JSON.readTree("{\"add_bos_token\":false}");
    Map<String, GgufValue> md =
        LlamaTokenizerMetadata.from(tokenizer, config, true, tokConfig, gen);
    assertEquals(1, u32(md, "tokenizer.ggml.bos_token_id"));
    assertEquals(2, u32(md, "tokenizer.ggml.eos_token_id"));
    assertEquals(false, md.get("tokenizer.ggml.add_bos_token").value());
    assertFalse(md.containsKey("tokenizer.chat_template"));
    Map<String, GgufValue> plain = LlamaTokenizerMetadata.from(tokenizer, config, true);
    assertEquals(5, u32(plain, "tokenizer.ggml.bos_token_id"));
  }

  @Test
  void namedChatTemplatesUseTheDefaultOne() throws Exception {
    JsonNode named =
        JSON.readTree(
            "[{\"name\":\"tool_use\",\"template\":\"T\"},{\"name\":\"default\",\"template\":\"D\"}]");
    assertEquals("D", LlamaTokenizerMetadata.chatTemplate(named));
  }
}
