package dev.compactor.core.data.clean;

/**
 * One unit that cleaning keeps or drops.
 *
 * @param index its 0-based position in the input (reports name documents by it)
 * @param text what dedup and the filters look at: the paragraph or line, a JSONL record's {@code
 *     text}, or its {@code prompt} and {@code completion} joined by a newline
 * @param original what is written out when it is kept: the text itself, or the JSONL line as read
 */
public record Document(int index, String text, String original) {

  /** A plain-text document, written out as it is. */
  public static Document of(int index, String text) {
    return new Document(index, text, text);
  }
}
