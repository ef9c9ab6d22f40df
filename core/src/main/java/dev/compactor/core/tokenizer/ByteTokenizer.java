package dev.compactor.core.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;

/**
 * The tokenizer of the byte-level reference model: every UTF-8 byte is its own token (id = byte
 * value) and id 256 is {@code <|endoftext|>}, used as both BOS and EOS. It is exactly what the
 * tokenizer.json written by {@link ByteLevelTokenizerFiles} encodes, without a native library.
 */
public final class ByteTokenizer implements TextTokenizer {

  /** Number of byte tokens. */
  public static final int BYTE_TOKENS = 256;

  /** Id of {@code <|endoftext|>}. */
  public static final int END_OF_TEXT = 256;

  /** Text of the end-of-text token. */
  public static final String END_OF_TEXT_TOKEN = "<|endoftext|>";

  @Override
  public int[] encode(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    int[] ids = new int[bytes.length];
    for (int i = 0; i < bytes.length; i++) {
      ids[i] = bytes[i] & 0xFF;
    }
    return ids;
  }

  @Override
  public String decode(int[] ids) {
    return decode(ids, true);
  }

  @Override
  public String decode(int[] ids, boolean skipSpecialTokens) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length);
    for (int id : ids) {
      if (id < 0 || id > END_OF_TEXT) {
        throw new IllegalArgumentException(
            "token id " + id + " is outside the byte tokenizer's range [0, " + END_OF_TEXT + "]");
      }
      if (id < BYTE_TOKENS) {
        out.write(id);
      } else if (!skipSpecialTokens) {
        out.writeBytes(END_OF_TEXT_TOKEN.getBytes(StandardCharsets.UTF_8));
      }
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  @Override
  public int vocabSize() {
    return BYTE_TOKENS + 1;
  }

  @Override
  public OptionalInt bosId() {
    return OptionalInt.of(END_OF_TEXT);
  }

  @Override
  public OptionalInt eosId() {
    return OptionalInt.of(END_OF_TEXT);
  }
}
