package dev.compactor.core.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.compactor.core.io.CheckpointFormatException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a Hugging Face {@code tokenizer.json} into the {@code tokenizer.ggml.*} metadata a
 * llama.cpp runtime loads, as convert_hf_to_gguf.py does: byte-level BPE becomes model {@code gpt2}
 * with tokens, token types and merges; SentencePiece-style BPE with byte fallback becomes model
 * {@code llama} with tokens, scores ({@code -id}, the merge priority such vocabularies encode by
 * order) and types. Ids the tokenizer does not define up to the model's vocab size become {@code
 * [PADn]} UNUSED tokens.
 */
public final class LlamaTokenizerMetadata {

  /** llama.cpp's {@code llama_token_type}. */
  static final int NORMAL = 1;

  static final int UNKNOWN = 2;
  static final int CONTROL = 3;
  static final int USER_DEFINED = 4;
  static final int UNUSED = 5;
  static final int BYTE = 6;

  /** The pre-tokenizer regex of Llama 3, which llama.cpp calls {@code llama-bpe}. */
  static final String LLAMA3_PATTERN =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
          + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  /**
   * The pre-tokenizer regex of Qwen2/2.5/3 (single digits, unlike Llama 3's runs of up to three),
   * which llama.cpp calls {@code qwen2}.
   */
  static final String QWEN2_PATTERN =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
          + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  private LlamaTokenizerMetadata() {}

  /** The metadata pairs for {@code tokenizer} of a llama-arch model given its config.json. */
  public static Map<String, GgufValue> from(JsonNode tokenizer, JsonNode config)
      throws CheckpointFormatException {
    return from(tokenizer, config, true);
  }

  /**
   * The metadata pairs for {@code tokenizer} given the model's config.json. A llama-arch file
   * always asks for a BOS token (as this exporter always did); any other arch asks for one exactly
   * when the tokenizer's post-processor puts a special token first, which is what Hugging Face does
   * when it encodes (Qwen's tokenizers add none).
   */
  public static Map<String, GgufValue> from(JsonNode tokenizer, JsonNode config, boolean llamaArch)
      throws CheckpointFormatException {
    return from(tokenizer, config, llamaArch, MissingNode.getInstance(), MissingNode.getInstance());
  }

  /**
   * As {@link #from(JsonNode, JsonNode, boolean)}, also reading tokenizer_config.json and
   * generation_config.json (either may be a missing node), as llama.cpp's gguf SpecialVocab does:
   * BOS/EOS ids come from the token texts tokenizer_config.json names, else from
   * generation_config.json, else from config.json; its {@code add_bos_token} / {@code
   * add_eos_token}, when given, win over the post-processor; and its {@code chat_template} (a
   * string, or the named-template list whose {@code default} entry is used) becomes {@code
   * tokenizer.chat_template}.
   */
  public static Map<String, GgufValue> from(
      JsonNode tokenizer,
      JsonNode config,
      boolean llamaArch,
      JsonNode tokenizerConfig,
      JsonNode generationConfig)
      throws CheckpointFormatException {
    JsonNode model = tokenizer.path("model");
    String type = model.path("type").asText("");
    if (!"BPE".equals(type)) {
      throw new UnsupportedOperationException(
          "not supported yet: tokenizer model type '" + type + "' (only BPE is exported)");
    }
    JsonNode vocab = model.path("vocab");
    if (!vocab.isObject() || vocab.isEmpty()) {
      throw new CheckpointFormatException("tokenizer.json: model.vocab must be a non-empty object");
    }
    int vocabSize = config.path("vocab_size").asInt(0);
    String[] tokens = new String[vocabSize];
    int[] types = new int[vocabSize];
    Iterator<Map.Entry<String, JsonNode>> it = vocab.fields();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      put(tokens, types, e.getValue().asInt(-1), e.getKey(), NORMAL);
    }
    for (JsonNode added : tokenizer.path("added_tokens")) {
      int id = added.path("id").asInt(-1);
      put(
          tokens,
          types,
          id,
          added.path("content").asText(),
          added.path("special").asBoolean(false) ? CONTROL : USER_DEFINED);
    }
    boolean byteLevel =
        mentionsByteLevel(tokenizer.path("pre_tokenizer"))
            || mentionsByteLevel(tokenizer.path("decoder"));
    boolean byteFallback = model.path("byte_fallback").asBoolean(false);
    if (!byteLevel && !byteFallback) {
      throw new UnsupportedOperationException(
          "not supported yet: a BPE tokenizer that is neither byte-level nor byte-fallback");
    }
    String unk = model.path("unk_token").isTextual() ? model.path("unk_token").asText() : null;
    for (int id = 0; id < vocabSize; id++) {
      if (tokens[id] == null) {
        tokens[id] = "[PAD" + id + "]";
        types[id] = UNUSED;
      } else if (!byteLevel && types[id] == NORMAL && tokens[id].matches("<0x[0-9A-Fa-f]{2}>")) {
        types[id] = BYTE;
      } else if (unk != null && tokens[id].equals(unk)) {
        types[id] = UNKNOWN;
      }
    }
    Map<String, GgufValue> md = new LinkedHashMap<>();
    md.put("tokenizer.ggml.model", GgufValue.string(byteLevel ? "gpt2" : "llama"));
    md.put("tokenizer.ggml.pre", GgufValue.string(byteLevel ? preTokenizer(tokenizer) : "default"));
    md.put("tokenizer.ggml.tokens", GgufValue.stringArray(List.of(tokens)));
    if (!byteLevel) {
      float[] scores = new float[vocabSize];
      for (int i = 0; i < vocabSize; i++) {
        scores[i] = -i;
      }
      md.put("tokenizer.ggml.scores", GgufValue.f32Array(scores));
    }
    md.put("tokenizer.ggml.token_type", GgufValue.i32Array(types));
    if (byteLevel) {
      List<String> merges = new ArrayList<>();
      for (JsonNode m : model.path("merges")) {
        merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
      }
      md.put("tokenizer.ggml.merges", GgufValue.stringArray(merges));
    }
    putSpecialId(md, "bos", tokens, tokenizerConfig, generationConfig, config);
    putSpecialId(md, "eos", tokens, tokenizerConfig, generationConfig, config);
    putSpecialId(md, "padding", tokens, tokenizerConfig, generationConfig, config);
    if (unk != null && vocab.has(unk)) {
      md.put("tokenizer.ggml.unknown_token_id", GgufValue.u32(vocab.get(unk).asInt()));
    }
    JsonNode addBos = tokenizerConfig.path("add_bos_token");
    JsonNode addEos = tokenizerConfig.path("add_eos_token");
    md.put(
        "tokenizer.ggml.add_bos_token",
        GgufValue.bool(
            addBos.isBoolean()
                ? addBos.asBoolean()
                : llamaArch || startsWithSpecialToken(tokenizer.path("post_processor"))));
    md.put(
        "tokenizer.ggml.add_eos_token", GgufValue.bool(addEos.isBoolean() && addEos.asBoolean()));
    String template = chatTemplate(tokenizerConfig.path("chat_template"));
    if (template != null) {
      md.put("tokenizer.chat_template", GgufValue.string(template));
    }
    return md;
  }

  /**
   * {@code kind} is bos, eos or padding: the id of the token text tokenizer_config.json names
   * ({@code bos_token}, {@code eos_token}, {@code pad_token}; a string or an AddedToken object),
   * else generation_config.json's, else config.json's {@code *_token_id} (first of a list).
   */
  private static void putSpecialId(
      Map<String, GgufValue> md,
      String kind,
      String[] tokens,
      JsonNode tokenizerConfig,
      JsonNode generationConfig,
      JsonNode config) {
    String key = "tokenizer.ggml." + kind + "_token_id";
    String prefix = "padding".equals(kind) ? "pad" : kind;
    JsonNode named = tokenizerConfig.path(prefix + "_token");
    String text = named.isObject() ? named.path("content").asText(null) : named.textValue();
    if (text != null) {
      for (int id = 0; id < tokens.length; id++) {
        if (text.equals(tokens[id])) {
          md.put(key, GgufValue.u32(id));
          return;
        }
      }
    }
    putId(md, key, generationConfig.path(prefix + "_token_id"), tokens.length);
    if (!md.containsKey(key)) {
      putId(md, key, config.path(prefix + "_token_id"), tokens.length);
    }
  }

  /** The template text: a plain string, or the {@code default} of a [{name, template}] list. */
  static String chatTemplate(JsonNode node) {
    if (node.isTextual()) {
      return node.asText();
    }
    for (JsonNode named : node) {
      if ("default".equals(named.path("name").asText())) {
        return named.path("template").asText(null);
      }
    }
    return null;
  }

  private static void put(String[] tokens, int[] types, int id, String text, int type)
      throws CheckpointFormatException {
    if (id < 0 || id >= tokens.length) {
      throw new CheckpointFormatException(
          "tokenizer.json: token '"
              + text
              + "' has id "
              + id
              + ", outside the model's vocab_size "
              + tokens.length);
    }
    tokens[id] = text;
    types[id] = type;
  }

  private static void putId(Map<String, GgufValue> md, String key, JsonNode id, int vocabSize) {
    JsonNode v = id.isArray() && !id.isEmpty() ? id.get(0) : id;
    if (v.isIntegralNumber() && v.asInt() >= 0 && v.asInt() < vocabSize) {
      md.put(key, GgufValue.u32(v.asInt()));
    }
  }

  private static boolean mentionsByteLevel(JsonNode node) {
    if (node.isObject()) {
      if ("ByteLevel".equals(node.path("type").asText())) {
        return true;
      }
      for (JsonNode child : node) {
        if (mentionsByteLevel(child)) {
          return true;
        }
      }
    } else if (node.isArray()) {
      for (JsonNode child : node) {
        if (mentionsByteLevel(child)) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * llama.cpp's pre-tokenizer name: Llama 3's or Qwen2's split regex, GPT-2's plain ByteLevel, else
   * default.
   */
  static String preTokenizer(JsonNode tokenizer) {
    JsonNode pre = tokenizer.path("pre_tokenizer");
    if (containsText(pre, LLAMA3_PATTERN)) {
      return "llama-bpe";
    }
    if (containsText(pre, QWEN2_PATTERN)) {
      return "qwen2";
    }
    if ("ByteLevel".equals(pre.path("type").asText())) {
      return "gpt-2";
    }
    return "default";
  }

  /**
   * A TemplateProcessing (alone or in a Sequence) whose single-sequence template opens with one.
   */
  private static boolean startsWithSpecialToken(JsonNode post) {
    if ("Sequence".equals(post.path("type").asText())) {
      for (JsonNode p : post.path("processors")) {
        if (startsWithSpecialToken(p)) {
          return true;
        }
      }
      return false;
    }
    return "TemplateProcessing".equals(post.path("type").asText())
        && post.path("single").path(0).has("SpecialToken");
  }

  private static boolean containsText(JsonNode node, String text) {
    if (node.isTextual()) {
      return node.asText().equals(text);
    }
    for (JsonNode child : node) {
      if (containsText(child, text)) {
        return true;
      }
    }
    return false;
  }
}
