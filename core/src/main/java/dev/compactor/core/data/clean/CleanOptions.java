package dev.compactor.core.data.clean;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The one definition of the cleaning options, shared by {@code compactor clean} (as {@code
 * --min-words}) and a recipe's {@code calibration.clean} mapping (as {@code min_words}). Each key,
 * its default and its check live here; an unknown key or a bad value is refused with the key's
 * name.
 *
 * <pre>
 * dedup             exact,minhash | exact | minhash | none     (default none)
 * jaccard           near-dup threshold, 0..1                   (0.8)
 * num_perm          MinHash signature length                   (128)
 * bands             BxR, e.g. 9x13                             (datasketch's optimum)
 * shingle           word:N | char:N                            (word:5)
 * seed              hash-family seed                           (1)
 * min_chars max_chars min_words max_words                      (0 = no bound)
 * lang              en                                         (off)
 * lang_min_score    English stop-word share                    (0.20)
 * repetition        true: Gopher rules (Rae et al. 2021)       (false)
 * ppl_model         model directory to score with              (off)
 * ppl_max_quantile  drop above this quantile                   (0.95 when ppl_model is set)
 * ppl_min_quantile  drop below this quantile                   (off)
 * ppl_max           drop above this perplexity                 (off)
 * </pre>
 */
public final class CleanOptions {

  /** Every key. */
  public static final List<String> KEYS =
      List.of(
          "dedup",
          "jaccard",
          "num_perm",
          "bands",
          "shingle",
          "seed",
          "min_chars",
          "max_chars",
          "min_words",
          "max_words",
          "lang",
          "lang_min_score",
          "repetition",
          "ppl_model",
          "ppl_max_quantile",
          "ppl_min_quantile",
          "ppl_max");

  /** Default upper perplexity quantile when only a model is given. */
  public static final double DEFAULT_PPL_MAX_QUANTILE = 0.95;

  /**
   * The parsed options.
   *
   * @param spec what to run
   * @param pplModel the reference model's directory (or URI) for the perplexity filter, or null
   */
  public record Parsed(CleanSpec spec, String pplModel) {}

  private CleanOptions() {}

  /** Parses {@code options} (key to value as text); {@code where} prefixes every problem. */
  public static Parsed parse(Map<String, String> options, String where) {
    Map<String, String> o = new LinkedHashMap<>(options);
    for (String k : o.keySet()) {
      if (!KEYS.contains(k)) {
        throw new IllegalArgumentException(
            where + k + ": unknown cleaning option (expected one of " + KEYS + ")");
      }
    }
    CleanSpec spec = CleanSpec.none();
    String dedup = o.getOrDefault("dedup", "none").toLowerCase(Locale.ROOT).replace(" ", "");
    Set<String> d = Set.of(dedup.split(","));
    for (String x : d) {
      if (!Set.of("exact", "minhash", "none").contains(x)) {
        throw new IllegalArgumentException(
            where + "dedup: expected exact, minhash, both comma-separated or none, found " + dedup);
      }
    }
    spec = spec.withDedup(d.contains("exact"), d.contains("minhash"));
    double jaccard = number(o, "jaccard", CleanSpec.DEFAULT_JACCARD, where);
    int numPerm = integer(o, "num_perm", CleanSpec.DEFAULT_NUM_PERM, where);
    LshBands bands = null;
    if (o.containsKey("bands")) {
      String[] br = o.get("bands").toLowerCase(Locale.ROOT).split("x");
      try {
        bands = new LshBands(Integer.parseInt(br[0].strip()), Integer.parseInt(br[1].strip()));
      } catch (RuntimeException e) {
        throw new IllegalArgumentException(
            where + "bands: expected BxR such as 9x13, found " + o.get("bands"));
      }
    }
    String shingle = o.getOrDefault("shingle", "word:" + CleanSpec.DEFAULT_SHINGLE);
    String[] sh = shingle.toLowerCase(Locale.ROOT).split(":");
    MinHash.Shingles kind;
    int size;
    try {
      kind =
          switch (sh[0]) {
            case "word" -> MinHash.Shingles.WORDS;
            case "char" -> MinHash.Shingles.CHARS;
            default -> throw new IllegalArgumentException();
          };
      size = Integer.parseInt(sh[1]);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(
          where + "shingle: expected word:N or char:N, found " + shingle);
    }
    try {
      spec = spec.withMinHash(jaccard, numPerm, bands, kind, size);
      spec =
          new CleanSpec(
              spec.exactDedup(),
              spec.minhashDedup(),
              spec.jaccard(),
              spec.numPerm(),
              spec.bands(),
              spec.shingles(),
              spec.shingleSize(),
              integer(o, "seed", (int) CleanSpec.DEFAULT_SEED, where),
              new LengthFilter(
                  integer(o, "min_chars", 0, where),
                  integer(o, "max_chars", 0, where),
                  integer(o, "min_words", 0, where),
                  integer(o, "max_words", 0, where)),
              null,
              null,
              null);
      if (o.containsKey("lang")) {
        spec =
            spec.withLanguage(
                new LanguageFilter(
                    o.get("lang"),
                    number(o, "lang_min_score", LanguageFilter.english().minScore(), where)));
      } else if (o.containsKey("lang_min_score")) {
        throw new IllegalArgumentException("lang_min_score needs lang");
      }
      if (bool(o, "repetition", where)) {
        spec = spec.withRepetition(RepetitionFilter.gopher());
      }
      String model = o.get("ppl_model");
      boolean anyBound =
          o.containsKey("ppl_max_quantile")
              || o.containsKey("ppl_min_quantile")
              || o.containsKey("ppl_max");
      if (model == null && anyBound) {
        throw new IllegalArgumentException("ppl_* bounds need ppl_model");
      }
      if (model != null) {
        double maxQ =
            number(o, "ppl_max_quantile", anyBound ? Double.NaN : DEFAULT_PPL_MAX_QUANTILE, where);
        spec =
            spec.withPerplexity(
                new PerplexityFilter(
                    number(o, "ppl_min_quantile", Double.NaN, where),
                    maxQ,
                    number(o, "ppl_max", Double.NaN, where)));
      }
      return new Parsed(spec, model);
    } catch (IllegalArgumentException e) {
      throw e.getMessage().startsWith(where)
          ? e
          : new IllegalArgumentException(where + e.getMessage(), e);
    }
  }

  private static double number(Map<String, String> o, String k, double fallback, String where) {
    String v = o.get(k);
    if (v == null) {
      return fallback;
    }
    try {
      return Double.parseDouble(v.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(where + k + ": expected a number, found " + v);
    }
  }

  private static int integer(Map<String, String> o, String k, int fallback, String where) {
    String v = o.get(k);
    if (v == null) {
      return fallback;
    }
    try {
      return Integer.parseInt(v.strip());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(where + k + ": expected an integer, found " + v);
    }
  }

  private static boolean bool(Map<String, String> o, String k, String where) {
    String v = o.get(k);
    if (v == null) {
      return false;
    }
    return switch (v.strip().toLowerCase(Locale.ROOT)) {
      case "true" -> true;
      case "false" -> false;
      default ->
          throw new IllegalArgumentException(where + k + ": expected true or false, found " + v);
    };
  }
}
