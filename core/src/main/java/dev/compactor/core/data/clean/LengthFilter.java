package dev.compactor.core.data.clean;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drops documents shorter or longer than given bounds in characters (code points of the stripped
 * text) and in words (runs of letters or digits); a bound of 0 is no bound. Codes {@code
 * length.too_short} and {@code length.too_long}.
 */
public record LengthFilter(int minChars, int maxChars, int minWords, int maxWords)
    implements DocumentFilter {

  private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}]+");

  public LengthFilter {
    if (minChars < 0 || maxChars < 0 || minWords < 0 || maxWords < 0) {
      throw new IllegalArgumentException("length bounds must be >= 0 (0 = no bound)");
    }
    if ((maxChars > 0 && maxChars < minChars) || (maxWords > 0 && maxWords < minWords)) {
      throw new IllegalArgumentException(
          "expected min <= max, found chars "
              + minChars
              + ".."
              + maxChars
              + ", words "
              + minWords
              + ".."
              + maxWords);
    }
  }

  /** True when no bound is set. */
  public boolean isOff() {
    return minChars == 0 && maxChars == 0 && minWords == 0 && maxWords == 0;
  }

  @Override
  public Optional<Drop> check(String text) {
    String t = text.strip();
    int chars = t.codePointCount(0, t.length());
    if (chars < minChars) {
      return drop("length.too_short", chars + " chars < " + minChars);
    }
    if (maxChars > 0 && chars > maxChars) {
      return drop("length.too_long", chars + " chars > " + maxChars);
    }
    int words = words(t);
    if (words < minWords) {
      return drop("length.too_short", words + " words < " + minWords);
    }
    if (maxWords > 0 && words > maxWords) {
      return drop("length.too_long", words + " words > " + maxWords);
    }
    return Optional.empty();
  }

  static int words(String text) {
    Matcher m = WORD.matcher(text);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  private static Optional<Drop> drop(String reason, String detail) {
    return Optional.of(new Drop(reason, detail));
  }
}
