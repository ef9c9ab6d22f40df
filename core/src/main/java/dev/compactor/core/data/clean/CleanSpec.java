package dev.compactor.core.data.clean;

import java.util.Locale;

/**
 * What to clean: which dedup to run and which filters, each with its threshold. Filters run first
 * (length, language, repetition: cheap and per document), then exact and near dedup on what they
 * kept, then the perplexity filter (the costliest, on the fewest documents). A document is counted
 * under the first rule that drops it.
 *
 * @param exactDedup drop documents whose normalised text equals an earlier one's
 * @param minhashDedup drop near-duplicates found by MinHash LSH
 * @param jaccard near-duplicate threshold on estimated Jaccard similarity
 * @param numPerm MinHash signature length
 * @param bands LSH banding; {@code null} picks {@link LshBands#optimal} for {@code jaccard}
 * @param shingles word or character shingles
 * @param shingleSize n of the n-gram shingles
 * @param seed seed of the MinHash hash family
 * @param length length bounds ({@link LengthFilter#isOff} when none)
 * @param language language filter, or {@code null}
 * @param repetition Gopher repetition filter, or {@code null}
 * @param perplexity perplexity bounds ({@link PerplexityFilter#isOff} when none)
 */
public record CleanSpec(
    boolean exactDedup,
    boolean minhashDedup,
    double jaccard,
    int numPerm,
    LshBands bands,
    MinHash.Shingles shingles,
    int shingleSize,
    long seed,
    LengthFilter length,
    LanguageFilter language,
    RepetitionFilter repetition,
    PerplexityFilter perplexity) {

  /** Default Jaccard threshold (Lee et al. 2021; datasketch's examples). */
  public static final double DEFAULT_JACCARD = 0.8;

  /** Default signature length (datasketch's default {@code num_perm}). */
  public static final int DEFAULT_NUM_PERM = 128;

  /** Default shingle size: word 5-grams, as Lee et al. 2021. */
  public static final int DEFAULT_SHINGLE = 5;

  /** Default hash-family seed. */
  public static final long DEFAULT_SEED = 1;

  public CleanSpec {
    if (!(jaccard > 0 && jaccard < 1)) {
      throw new IllegalArgumentException("expected 0 < jaccard < 1, found " + jaccard);
    }
    if (numPerm < 1 || shingleSize < 1) {
      throw new IllegalArgumentException(
          "expected numPerm and shingle size >= 1, found " + numPerm + " and " + shingleSize);
    }
    if (bands != null && bands.bands() * bands.rows() > numPerm) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "%d bands x %d rows exceed the %d hashes",
              bands.bands(),
              bands.rows(),
              numPerm));
    }
    if (length == null) {
      length = new LengthFilter(0, 0, 0, 0);
    }
    if (perplexity == null) {
      perplexity = new PerplexityFilter(Double.NaN, Double.NaN, Double.NaN);
    }
  }

  /** Nothing on: every document kept. */
  public static CleanSpec none() {
    return new CleanSpec(
        false,
        false,
        DEFAULT_JACCARD,
        DEFAULT_NUM_PERM,
        null,
        MinHash.Shingles.WORDS,
        DEFAULT_SHINGLE,
        DEFAULT_SEED,
        null,
        null,
        null,
        null);
  }

  /** The banding used: {@link #bands()} or the optimum for the threshold. */
  public LshBands effectiveBands() {
    return bands != null ? bands : LshBands.optimal(jaccard, numPerm, 0.5, 0.5);
  }

  /** True when any rule is on. */
  public boolean isActive() {
    return exactDedup
        || minhashDedup
        || !length.isOff()
        || language != null
        || repetition != null
        || !perplexity.isOff();
  }

  public CleanSpec withDedup(boolean exact, boolean minhash) {
    return new CleanSpec(
        exact,
        minhash,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }

  public CleanSpec withMinHash(
      double jaccard, int numPerm, LshBands bands, MinHash.Shingles shingles, int shingleSize) {
    return new CleanSpec(
        exactDedup,
        minhashDedup,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }

  public CleanSpec withLength(LengthFilter length) {
    return new CleanSpec(
        exactDedup,
        minhashDedup,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }

  public CleanSpec withLanguage(LanguageFilter language) {
    return new CleanSpec(
        exactDedup,
        minhashDedup,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }

  public CleanSpec withRepetition(RepetitionFilter repetition) {
    return new CleanSpec(
        exactDedup,
        minhashDedup,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }

  public CleanSpec withPerplexity(PerplexityFilter perplexity) {
    return new CleanSpec(
        exactDedup,
        minhashDedup,
        jaccard,
        numPerm,
        bands,
        shingles,
        shingleSize,
        seed,
        length,
        language,
        repetition,
        perplexity);
  }
}
