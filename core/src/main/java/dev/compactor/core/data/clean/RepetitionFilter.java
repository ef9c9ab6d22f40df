package dev.compactor.core.data.clean;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Gopher's repetition rules (Rae et al. 2021, "Scaling Language Models: Methods, Analysis &amp;
 * Insights from Training Gopher", Table A1), with that table's thresholds as the defaults (as
 * HuggingFace datatrove's {@code GopherRepetitionFilter} also uses them):
 *
 * <ul>
 *   <li>duplicate paragraphs (split on 2+ newlines) over 30 % of paragraphs, or their characters
 *       over 20 % of the text; the same for duplicate lines (split on newlines);
 *   <li>the most frequent word 2-, 3-, 4-gram covering over 20 %, 18 %, 16 % of the characters;
 *   <li>word 5- … 10-grams that occur again covering over 15 %, 14 %, 13 %, 12 %, 11 %, 10 % of the
 *       characters.
 * </ul>
 *
 * A "duplicate" is every occurrence after the first. Character fractions are of the whole text's
 * length; an n-gram's characters are those of its words joined by single spaces (top n-gram) or
 * concatenated (duplicate n-grams, counted without overlap as datatrove's {@code
 * find_all_duplicate} does). Words are runs of letters or digits. One deviation, so that a short
 * text is not dropped for an n-gram that occurs once: the top n-gram counts only when it occurs at
 * least twice. Codes {@code repetition.<rule>}.
 */
public record RepetitionFilter(
    double dupParaFrac,
    double dupParaCharFrac,
    double dupLineFrac,
    double dupLineCharFrac,
    double[] topNgramCharFrac,
    double[] dupNgramCharFrac)
    implements DocumentFilter {

  /** Smallest n of the top n-gram rule ({@code topNgramCharFrac[0]} is for 2-grams). */
  public static final int TOP_FROM = 2;

  /** Smallest n of the duplicate n-gram rule ({@code dupNgramCharFrac[0]} is for 5-grams). */
  public static final int DUP_FROM = 5;

  private static final Pattern PARAGRAPHS = Pattern.compile("\\n{2,}");
  private static final Pattern LINES = Pattern.compile("\\n+");
  private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}]+");

  /** Gopher's thresholds (Rae et al. 2021, Table A1). */
  public static RepetitionFilter gopher() {
    return new RepetitionFilter(
        0.30,
        0.20,
        0.30,
        0.20,
        new double[] {0.20, 0.18, 0.16},
        new double[] {0.15, 0.14, 0.13, 0.12, 0.11, 0.10});
  }

  @Override
  public Optional<Drop> check(String text) {
    double len = text.length();
    if (len == 0) {
      return Optional.empty();
    }
    List<String> paras = parts(PARAGRAPHS, text);
    int[] p = duplicates(paras);
    if (p[0] > dupParaFrac * paras.size()) {
      return drop("dup_para_frac", (double) p[0] / paras.size(), dupParaFrac);
    }
    if (p[1] > dupParaCharFrac * len) {
      return drop("dup_para_char_frac", p[1] / len, dupParaCharFrac);
    }
    List<String> lines = parts(LINES, text);
    int[] l = duplicates(lines);
    if (l[0] > dupLineFrac * lines.size()) {
      return drop("dup_line_frac", (double) l[0] / lines.size(), dupLineFrac);
    }
    if (l[1] > dupLineCharFrac * len) {
      return drop("dup_line_char_frac", l[1] / len, dupLineCharFrac);
    }
    List<String> words = words(text);
    for (int i = 0; i < topNgramCharFrac.length; i++) {
      double f = topNgramChars(words, TOP_FROM + i) / len;
      if (f > topNgramCharFrac[i]) {
        return drop("top_" + (TOP_FROM + i) + "gram_char_frac", f, topNgramCharFrac[i]);
      }
    }
    for (int i = 0; i < dupNgramCharFrac.length; i++) {
      double f = dupNgramChars(words, DUP_FROM + i) / len;
      if (f > dupNgramCharFrac[i]) {
        return drop("dup_" + (DUP_FROM + i) + "gram_char_frac", f, dupNgramCharFrac[i]);
      }
    }
    return Optional.empty();
  }

  /** {count, characters} of the elements that repeat an earlier one. */
  static int[] duplicates(List<String> elements) {
    Set<String> seen = new HashSet<>();
    int count = 0;
    int chars = 0;
    for (String e : elements) {
      if (!seen.add(e)) {
        count++;
        chars += e.length();
      }
    }
    return new int[] {count, chars};
  }

  /** Characters of the most frequent n-gram (words joined by spaces) times its count, if >= 2. */
  static double topNgramChars(List<String> words, int n) {
    Map<String, Integer> counts = new HashMap<>();
    String top = null;
    int topCount = 0;
    for (int i = 0; i + n <= words.size(); i++) {
      String g = String.join(" ", words.subList(i, i + n));
      int c = counts.merge(g, 1, Integer::sum);
      if (c > topCount) {
        top = g;
        topCount = c;
      }
    }
    return topCount >= 2 ? (double) top.length() * topCount : 0;
  }

  /**
   * Characters of the n-grams (words concatenated) that occur again, scanning left to right and
   * jumping past a repeated n-gram so overlapping repeats are not counted twice.
   */
  static double dupNgramChars(List<String> words, int n) {
    Set<String> seen = new HashSet<>();
    long chars = 0;
    int i = 0;
    while (i + n <= words.size()) {
      String g = String.join("", words.subList(i, i + n));
      if (seen.contains(g)) {
        chars += g.length();
        i += n;
      } else {
        seen.add(g);
        i++;
      }
    }
    return chars;
  }

  private static List<String> parts(Pattern sep, String text) {
    List<String> out = new ArrayList<>();
    for (String s : sep.split(text.strip())) {
      out.add(s);
    }
    return out;
  }

  static List<String> words(String text) {
    List<String> out = new ArrayList<>();
    Matcher m = WORD.matcher(text.toLowerCase(Locale.ROOT));
    while (m.find()) {
      out.add(m.group());
    }
    return out;
  }

  private static Optional<Drop> drop(String rule, double value, double threshold) {
    return Optional.of(
        new Drop(
            "repetition." + rule, String.format(Locale.ROOT, "%.3f > %.3f", value, threshold)));
  }
}
