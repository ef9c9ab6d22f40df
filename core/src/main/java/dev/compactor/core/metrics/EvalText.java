package dev.compactor.core.metrics;

import dev.compactor.core.tokenizer.TextTokenizer;
import java.nio.charset.StandardCharsets;

/**
 * A text ready for scoring: its tokens (with the tokenizer's BOS in front when it has one, so the
 * first real token is scored too) and the number of UTF-8 bytes the scored tokens stand for, the
 * denominator of bits per byte.
 */
public record EvalText(int[] tokens, long scoredBytes) {

  /** Tokenizes {@code text} for scoring. */
  public static EvalText of(TextTokenizer tokenizer, String text) {
    long bytes = text.getBytes(StandardCharsets.UTF_8).length;
    if (tokenizer.bosId().isPresent()) {
      return new EvalText(tokenizer.encodeWithBos(text), bytes);
    }
    int[] ids = tokenizer.encode(text);
    if (ids.length == 0) {
      return new EvalText(ids, 0);
    }
    long unscored = tokenizer.decode(new int[] {ids[0]}).getBytes(StandardCharsets.UTF_8).length;
    return new EvalText(ids, bytes - unscored);
  }
}
