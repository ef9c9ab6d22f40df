package dev.compactor.core.data.clean;

import java.util.Optional;

/** A per-document quality rule: says why a document is dropped, or nothing to keep it. */
@FunctionalInterface
public interface DocumentFilter {

  /**
   * Why a document was dropped.
   *
   * @param reason a stable code such as {@code length.too_short} (reports count by it)
   * @param detail the measured value against the threshold, e.g. {@code 3 words < 5}
   */
  record Drop(String reason, String detail) {}

  /** The reason to drop {@code text}, or empty to keep it. */
  Optional<Drop> check(String text);
}
