package dev.compactor.core.data.clean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FiltersTest {

  static final String ENGLISH =
      "Mr President, the report we are debating today is an important step for the Union. It"
          + " sets out how the Member States should share the costs of the new energy policy,"
          + " and I would like to thank the rapporteur for the work that has been done.";

  private static String reason(DocumentFilter f, String text) {
    return f.check(text).map(DocumentFilter.Drop::reason).orElse("kept");
  }

  @Test
  void lengthBoundsInCharactersAndWords() {
    LengthFilter f = new LengthFilter(10, 50, 3, 6);
    assertEquals("length.too_short", reason(f, "Hi there"));
    assertEquals("length.too_short", reason(f, "Absolutely, positively!"));
    assertEquals("kept", reason(f, "one two three four"));
    assertEquals("length.too_long", reason(f, "one two three four five six seven"));
    assertEquals("length.too_long", reason(f, "x".repeat(51)));
    assertEquals(
        "2 words < 3",
        f.check("Absolutely, positively!").map(DocumentFilter.Drop::detail).orElseThrow());
    assertTrue(new LengthFilter(0, 0, 0, 0).isOff());
    assertThrows(IllegalArgumentException.class, () -> new LengthFilter(10, 5, 0, 0));
  }

  @Test
  void languageKeepsEnglishDropsOthers() {
    LanguageFilter f = LanguageFilter.english();
    assertEquals("kept", reason(f, ENGLISH));
    assertEquals(
        "language.not_en",
        reason(
            f,
            "Herr Präsident, der Bericht, über den wir heute debattieren, ist ein wichtiger"
                + " Schritt für die Union."));
    assertEquals(
        "language.not_en",
        reason(
            f, "Monsieur le Président, le rapport dont nous débattons aujourd'hui est important."));
    assertThrows(UnsupportedOperationException.class, () -> new LanguageFilter("de", 0.2));
  }

  @Test
  void repetitionKeepsOrdinaryProse() {
    assertEquals("kept", reason(RepetitionFilter.gopher(), ENGLISH));
  }

  @Test
  void repetitionRulesFireOnHandmadeTexts() {
    RepetitionFilter g = RepetitionFilter.gopher();
    String p1 = "First paragraph with some words in it.";
    String p2 = "Second paragraph, also with words.";
    // 3 paragraphs, 1 a repeat: 1/3 > 0.30
    assertEquals("repetition.dup_para_frac", reason(g, p1 + "\n\n" + p2 + "\n\n" + p1));
    // 4 paragraphs, 1 repeat (0.25 <= 0.30) holding 100 of 212 chars (> 0.20)
    String longP = "x".repeat(100);
    assertEquals(
        "repetition.dup_para_char_frac",
        reason(g, longP + "\n\n" + "a b" + "\n\n" + "c d" + "\n\n" + longP));
    // lines: 2 repeats of 5 (0.4 > 0.30)
    assertEquals(
        "repetition.dup_line_frac",
        reason(g, "Subscribe now\nnews one\nSubscribe now\nnews two\nSubscribe now"));
    // lines: 1 repeat of 5 (0.2 <= 0.30) holding 48 of 113 chars (> 0.20)
    String l = "Click here to subscribe to our newsletter today";
    assertEquals("repetition.dup_line_char_frac", reason(g, l + "\nalpha\nbeta\ngamma\n" + l));
    // "aa bb" twice in 29 characters: 10 / 29 = 0.345 > 0.20
    assertEquals("repetition.top_2gram_char_frac", reason(g, "aa bb aa bb cc dd ee ff gg hh"));
    assertEquals(
        "0.345 > 0.200",
        g.check("aa bb aa bb cc dd ee ff gg hh").map(DocumentFilter.Drop::detail).orElseThrow());
  }

  @Test
  void ngramCountsHaveKnownAnswers() {
    List<String> w = Arrays.asList("a b c d e a b c d e f".split(" "));
    assertEquals(5, RepetitionFilter.dupNgramChars(w, 5)); // "abcde" again at 5
    List<String> same = Arrays.asList("a a a a a a a a a a".split(" "));
    assertEquals(5, RepetitionFilter.dupNgramChars(same, 5)); // repeat at 1, then jump past 10
    assertEquals(0, RepetitionFilter.dupNgramChars(Arrays.asList("a b c d e f".split(" ")), 5));
    assertEquals(3 * 2, RepetitionFilter.topNgramChars(w, 2)); // "a b" twice
    assertEquals(0, RepetitionFilter.topNgramChars(Arrays.asList("a b c".split(" ")), 2));
    assertArrayEquals(
        new int[] {2, 12},
        RepetitionFilter.duplicates(List.of("x", "hello world", "x", "hello world", "y")));
  }

  @Test
  void perplexityQuantilesAreNearestRank() {
    // ppl 10, 20, ..., 100 by document; the unscorable one is kept
    List<String> docs = List.of("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "unscorable");
    PerplexityFilter.Scorer scorer =
        t -> t.equals("unscorable") ? Double.NaN : 10 * Integer.parseInt(t);
    PerplexityFilter.Result r = new PerplexityFilter(0.2, 0.8, Double.NaN).apply(docs, scorer);
    assertEquals(20, r.low(), 0);
    assertEquals(80, r.high(), 0);
    assertEquals(List.of(0, 8, 9), List.copyOf(r.drops().keySet()));
    assertEquals("perplexity.low", r.drops().get(0).reason());
    assertEquals("perplexity.high", r.drops().get(9).reason());
    PerplexityFilter.Result abs =
        new PerplexityFilter(Double.NaN, Double.NaN, 55).apply(docs, scorer);
    assertEquals(Map.of(5, "perplexity.high"), Map.of(5, abs.drops().get(5).reason()));
    assertEquals(5, abs.drops().size());
    assertEquals(Optional.empty(), Optional.ofNullable(abs.drops().get(10)));
    assertThrows(IllegalArgumentException.class, () -> new PerplexityFilter(0.9, 0.5, Double.NaN));
  }
}
