package dev.compactor.core.data.clean;

import dev.compactor.core.data.EnglishDetector;
import java.util.Locale;
import java.util.Optional;

/**
 * Keeps documents in one language. Only English is built: its score is {@link
 * EnglishDetector#stopWordRatio} (English prose 0.35–0.45, other Latin-script languages below
 * 0.10), dropped under {@code minScore} with code {@code language.not_en}. Unlike {@link
 * EnglishDetector#isEnglish} it judges short texts too: dropping those is the length filter's job.
 */
public record LanguageFilter(String language, double minScore) implements DocumentFilter {

  public LanguageFilter {
    language = language.toLowerCase(Locale.ROOT);
    if (!language.equals("en")) {
      throw new UnsupportedOperationException(
          "not supported: lang=" + language + " (only en has a detector)");
    }
    if (!(minScore >= 0 && minScore <= 1)) {
      throw new IllegalArgumentException("expected 0 <= minScore <= 1, found " + minScore);
    }
  }

  /** English at {@link EnglishDetector#THRESHOLD}. */
  public static LanguageFilter english() {
    return new LanguageFilter("en", EnglishDetector.THRESHOLD);
  }

  @Override
  public Optional<Drop> check(String text) {
    double score = EnglishDetector.stopWordRatio(text);
    if (score < minScore) {
      return Optional.of(
          new Drop(
              "language.not_" + language,
              String.format(Locale.ROOT, "English score %.3f < %.3f", score, minScore)));
    }
    return Optional.empty();
  }
}
