package dev.compactor.core.tokenizer;

import java.util.OptionalInt;

/**
 * Turns text into the token ids a model was trained on and back. Metrics, calibration and the CLI
 * see only this interface, so a Hugging Face tokenizer.json and the built-in byte tokenizer are
 * interchangeable.
 */
public interface TextTokenizer extends AutoCloseable {

  /** Token ids of {@code text}, without any special tokens added. */
  int[] encode(String text);

  /** Text of {@code ids}; special tokens are left out. */
  String decode(int[] ids);

  /** Text of {@code ids}, with special tokens written out unless {@code skipSpecialTokens}. */
  String decode(int[] ids, boolean skipSpecialTokens);

  /**
   * The ids a model is fed for {@code text}: {@link #encode} with the BOS token in front when the
   * tokenizer has one. Evaluation and generation both use this, so a prompt and a scored text start
   * the same way.
   */
  default int[] encodeWithBos(String text) {
    int[] ids = encode(text);
    if (bosId().isEmpty()) {
      return ids;
    }
    int[] withBos = new int[ids.length + 1];
    withBos[0] = bosId().getAsInt();
    System.arraycopy(ids, 0, withBos, 1, ids.length);
    return withBos;
  }

  /** Number of ids this tokenizer can produce (vocabulary plus added tokens). */
  int vocabSize();

  /** Beginning-of-sequence token, when the tokenizer declares one. */
  OptionalInt bosId();

  /** End-of-sequence token, when the tokenizer declares one. */
  OptionalInt eosId();

  @Override
  default void close() {}
}
