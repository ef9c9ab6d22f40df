package dev.compactor.core.data;

import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tells English text from the other European languages in a multilingual corpus by the share of its
 * words that are common English function words: English prose sits around 0.35–0.45, other
 * Latin-script languages below 0.10 (a few short words such as "in" or "to" are shared).
 */
public final class EnglishDetector {

  /** Share of stop words above which a text counts as English. */
  public static final double THRESHOLD = 0.20;

  /** Texts with fewer words than this are too short to judge and are refused. */
  public static final int MIN_WORDS = 20;

  private static final Set<String> STOP_WORDS =
      Set.of(
          "the", "of", "and", "to", "in", "is", "that", "for", "it", "on", "be", "this", "with",
          "are", "as", "we", "not", "have", "by", "which", "will", "at", "an", "has", "was", "our",
          "from", "a", "i", "you", "they", "their", "there", "would", "should", "been", "or");

  private static final Pattern WORD = Pattern.compile("\\p{L}+");

  private EnglishDetector() {}

  /** Fraction of the words of {@code text} that are English stop words (0 when it has none). */
  public static double stopWordRatio(String text) {
    Matcher m = WORD.matcher(text.toLowerCase(Locale.ROOT));
    int words = 0;
    int stop = 0;
    while (m.find()) {
      words++;
      if (STOP_WORDS.contains(m.group())) {
        stop++;
      }
    }
    return words == 0 ? 0 : (double) stop / words;
  }

  /** True when {@code text} has at least {@link #MIN_WORDS} words and reads as English. */
  public static boolean isEnglish(String text) {
    Matcher m = WORD.matcher(text);
    int words = 0;
    while (words < MIN_WORDS && m.find()) {
      words++;
    }
    return words >= MIN_WORDS && stopWordRatio(text) >= THRESHOLD;
  }
}
