package dev.compactor.core.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.CheckpointFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A model's own Hugging Face tokenizer (its tokenizer.json), run by the Rust tokenizers library
 * through DJL, fully offline. Special tokens are never added on encode and are skipped on decode,
 * and nothing is truncated, so metrics see exactly the tokens of the text.
 */
public final class HfTokenizer implements TextTokenizer {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final HuggingFaceTokenizer tokenizer;
  private final int vocabSize;
  private final OptionalInt bos;
  private final OptionalInt eos;

  private HfTokenizer(
      HuggingFaceTokenizer tokenizer, int vocabSize, OptionalInt bos, OptionalInt eos) {
    this.tokenizer = tokenizer;
    this.vocabSize = vocabSize;
    this.bos = bos;
    this.eos = eos;
  }

  /** Loads {@code dir/tokenizer.json} (and BOS/EOS from tokenizer_config.json when present). */
  public static HfTokenizer load(Path dir) throws IOException {
    Path file = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      throw new CheckpointFormatException(
          "expected a Hugging Face tokenizer file at " + file + " but found none");
    }
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new CheckpointFormatException(file + " is not valid JSON: " + e.getMessage(), e);
    }
    Map<String, Integer> ids = tokenIds(root, file);
    int size = 0;
    for (int id : ids.values()) {
      size = Math.max(size, id + 1);
    }
    JsonNode config = readConfig(dir.resolve("tokenizer_config.json"));
    HuggingFaceTokenizer hf;
    try {
      hf =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(file)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build();
    } catch (RuntimeException e) {
      throw new CheckpointFormatException(
          "the tokenizers library refused " + file + ": " + e.getMessage(), e);
    }
    OptionalInt bos = specialId(config, "bos_token", ids);
    if (bos.isEmpty() && !config.has("bos_token")) {
      bos = templateBos(root.path("post_processor"), ids);
    }
    return new HfTokenizer(hf, size, bos, specialId(config, "eos_token", ids));
  }

  private static Map<String, Integer> tokenIds(JsonNode root, Path file)
      throws CheckpointFormatException {
    JsonNode vocab = root.path("model").path("vocab");
    Map<String, Integer> ids = new HashMap<>();
    if (vocab.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        ids.put(e.getKey(), e.getValue().asInt());
      }
    } else if (vocab.isArray()) {
      // Unigram models list [piece, score] pairs; the id is the position.
      for (int i = 0; i < vocab.size(); i++) {
        ids.put(vocab.get(i).path(0).asText(), i);
      }
    } else {
      throw new CheckpointFormatException(
          file
              + ": expected model.vocab to be an object or an array, found "
              + vocab.getNodeType());
    }
    for (JsonNode added : root.path("added_tokens")) {
      ids.put(added.path("content").asText(), added.path("id").asInt());
    }
    return ids;
  }

  private static JsonNode readConfig(Path file) throws CheckpointFormatException {
    if (!Files.isRegularFile(file)) {
      return JSON.createObjectNode();
    }
    try {
      return JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new CheckpointFormatException(file + " is not valid JSON: " + e.getMessage(), e);
    }
  }

  /**
   * The special token a TemplateProcessing post-processor (alone or in a Sequence) puts before a
   * single sequence, as Llama 3's {@code <|begin_of_text|>}: the BOS of a directory that ships no
   * tokenizer_config.json. A config that names {@code bos_token} (even as null, as Qwen's does)
   * wins.
   */
  private static OptionalInt templateBos(JsonNode post, Map<String, Integer> ids) {
    if ("Sequence".equals(post.path("type").asText())) {
      for (JsonNode p : post.path("processors")) {
        OptionalInt id = templateBos(p, ids);
        if (id.isPresent()) {
          return id;
        }
      }
      return OptionalInt.empty();
    }
    if (!"TemplateProcessing".equals(post.path("type").asText())) {
      return OptionalInt.empty();
    }
    String first = post.path("single").path(0).path("SpecialToken").path("id").asText(null);
    JsonNode special = post.path("special_tokens").path(first == null ? "" : first);
    if (special.path("ids").size() == 1) {
      return OptionalInt.of(special.path("ids").get(0).asInt());
    }
    return first != null && ids.containsKey(first)
        ? OptionalInt.of(ids.get(first))
        : OptionalInt.empty();
  }

  private static OptionalInt specialId(JsonNode config, String key, Map<String, Integer> ids) {
    JsonNode node = config.path(key);
    String text = node.isObject() ? node.path("content").asText(null) : node.asText(null);
    if (text == null || !ids.containsKey(text)) {
      return OptionalInt.empty();
    }
    return OptionalInt.of(ids.get(text));
  }

  @Override
  public int[] encode(String text) {
    long[] ids = tokenizer.encode(text, false, false).getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  @Override
  public String decode(int[] ids) {
    return decode(ids, true);
  }

  @Override
  public String decode(int[] ids, boolean skipSpecialTokens) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      longs[i] = ids[i];
    }
    return tokenizer.decode(longs, skipSpecialTokens);
  }

  @Override
  public int vocabSize() {
    return vocabSize;
  }

  @Override
  public OptionalInt bosId() {
    return bos;
  }

  @Override
  public OptionalInt eosId() {
    return eos;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
