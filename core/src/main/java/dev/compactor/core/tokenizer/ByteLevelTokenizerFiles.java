package dev.compactor.core.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a Hugging Face tokenizer.json (and tokenizer_config.json) for the byte tokenizer, so a
 * directory holding the byte-level reference model loads in any Hugging Face tooling (Rust
 * tokenizers, transformers, DJL).
 *
 * <p>The file is a GPT-2 style byte-level BPE with an empty merge list: the ByteLevel pre-tokenizer
 * maps each byte to one printable character, each such character is a vocabulary entry whose id is
 * the byte value, and id 256 is the added special token {@code <|endoftext|>}.
 */
public final class ByteLevelTokenizerFiles {

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private ByteLevelTokenizerFiles() {}

  /** Writes tokenizer.json and tokenizer_config.json into {@code dir}. */
  public static void write(Path dir, int modelMaxLength) throws IOException {
    Files.createDirectories(dir);
    JSON.writeValue(dir.resolve("tokenizer.json").toFile(), tokenizerJson());
    JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), tokenizerConfig(modelMaxLength));
  }

  /**
   * The character GPT-2's ByteLevel pre-tokenizer uses for each byte: printable Latin-1 bytes map
   * to themselves, the others to code points from 256 upward, in byte order.
   */
  public static char[] byteToUnicode() {
    char[] map = new char[256];
    int next = 0;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      map[b] = printable ? (char) b : (char) (256 + next++);
    }
    return map;
  }

  static ObjectNode tokenizerJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ArrayNode added = root.putArray("added_tokens");
    ObjectNode eot = added.addObject();
    eot.put("id", ByteTokenizer.END_OF_TEXT);
    eot.put("content", ByteTokenizer.END_OF_TEXT_TOKEN);
    eot.put("single_word", false);
    eot.put("lstrip", false);
    eot.put("rstrip", false);
    eot.put("normalized", false);
    eot.put("special", true);
    root.putNull("normalizer");
    root.set("pre_tokenizer", byteLevel(false, true));
    root.set("post_processor", byteLevel(false, false));
    root.set("decoder", byteLevel(false, true));
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.put("continuing_subword_prefix", "");
    model.put("end_of_word_suffix", "");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    model.put("ignore_merges", false);
    ObjectNode vocab = model.putObject("vocab");
    char[] chars = byteToUnicode();
    for (int b = 0; b < 256; b++) {
      vocab.put(String.valueOf(chars[b]), b);
    }
    model.putArray("merges");
    return root;
  }

  private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
    ObjectNode node = JSON.createObjectNode();
    node.put("type", "ByteLevel");
    node.put("add_prefix_space", addPrefixSpace);
    node.put("trim_offsets", trimOffsets);
    node.put("use_regex", true);
    return node;
  }

  private static ObjectNode tokenizerConfig(int modelMaxLength) {
    ObjectNode config = JSON.createObjectNode();
    config.put("tokenizer_class", "PreTrainedTokenizerFast");
    config.put("bos_token", ByteTokenizer.END_OF_TEXT_TOKEN);
    config.put("eos_token", ByteTokenizer.END_OF_TEXT_TOKEN);
    config.put("add_bos_token", false);
    config.put("add_eos_token", false);
    config.put("model_max_length", modelMaxLength);
    config.put("clean_up_tokenization_spaces", false);
    return config;
  }
}
