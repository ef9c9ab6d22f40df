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

  /** Number of ids this tokenizer can produce (vocabulary plus added tokens). */
  int vocabSize();

  /** Beginning-of-sequence token, when the tokenizer declares one. */
  OptionalInt bosId();

  /** End-of-sequence token, when the tokenizer declares one. */
  OptionalInt eosId();

  @Override
  default void close() {}
}
