package dev.compactor.core.data.clean;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Drops documents a reference model finds unlikely (or suspiciously likely): CCNet (Wenzek et al.
 * 2019) scores every paragraph with a language model trained on clean text and cuts the corpus at
 * perplexity quantiles. A document is dropped when its perplexity is above the {@code maxQuantile}
 * quantile of all scored documents ({@code perplexity.high}), below the {@code minQuantile}
 * quantile ({@code perplexity.low}: boilerplate and repeats score very low), or above {@code
 * maxPerplexity}. A bound that is {@code NaN} is off. Quantiles are nearest-rank over the documents
 * the scorer could score; a document it cannot score (fewer than two tokens) is kept.
 */
public record PerplexityFilter(double minQuantile, double maxQuantile, double maxPerplexity) {

  /** A document's perplexity under some model; {@code NaN} when it cannot be scored. */
  @FunctionalInterface
  public interface Scorer {
    double perplexity(String text);
  }

  /** What the filter measured and decided. */
  public record Result(
      double[] perplexity, Map<Integer, DocumentFilter.Drop> drops, double low, double high) {}

  public PerplexityFilter {
    checkQuantile(minQuantile, "minQuantile");
    checkQuantile(maxQuantile, "maxQuantile");
    if (!Double.isNaN(minQuantile) && !Double.isNaN(maxQuantile) && minQuantile >= maxQuantile) {
      throw new IllegalArgumentException(
          "expected minQuantile < maxQuantile, found " + minQuantile + " and " + maxQuantile);
    }
    if (!Double.isNaN(maxPerplexity) && !(maxPerplexity > 1)) {
      throw new IllegalArgumentException("expected maxPerplexity > 1, found " + maxPerplexity);
    }
  }

  /** True when no bound is set. */
  public boolean isOff() {
    return Double.isNaN(minQuantile) && Double.isNaN(maxQuantile) && Double.isNaN(maxPerplexity);
  }

  /** Scores every text and decides which to drop (keys are indices into {@code texts}). */
  public Result apply(List<String> texts, Scorer scorer) {
    double[] ppl = new double[texts.size()];
    List<Double> scored = new ArrayList<>();
    for (int i = 0; i < ppl.length; i++) {
      ppl[i] = scorer.perplexity(texts.get(i));
      if (!Double.isNaN(ppl[i])) {
        scored.add(ppl[i]);
      }
    }
    double[] sorted = scored.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(sorted);
    double low = Double.isNaN(minQuantile) ? Double.NaN : nearestRank(sorted, minQuantile);
    double high = Double.isNaN(maxQuantile) ? Double.NaN : nearestRank(sorted, maxQuantile);
    Map<Integer, DocumentFilter.Drop> drops = new LinkedHashMap<>();
    for (int i = 0; i < ppl.length; i++) {
      double p = ppl[i];
      if (Double.isNaN(p)) {
        continue;
      }
      if (!Double.isNaN(maxPerplexity) && p > maxPerplexity) {
        drops.put(i, drop("perplexity.high", p, ">", maxPerplexity, "max"));
      } else if (!Double.isNaN(high) && p > high) {
        drops.put(i, drop("perplexity.high", p, ">", high, "q" + maxQuantile));
      } else if (!Double.isNaN(low) && p < low) {
        drops.put(i, drop("perplexity.low", p, "<", low, "q" + minQuantile));
      }
    }
    return new Result(ppl, drops, low, high);
  }

  /** The nearest-rank {@code q} quantile of ascending {@code sorted}: element ceil(q n) - 1. */
  static double nearestRank(double[] sorted, double q) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    int k = (int) Math.ceil(q * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, k))];
  }

  private static DocumentFilter.Drop drop(
      String reason, double p, String op, double bound, String what) {
    return new DocumentFilter.Drop(
        reason, String.format(Locale.ROOT, "ppl %.2f %s %.2f (%s)", p, op, bound, what));
  }

  private static void checkQuantile(double q, String name) {
    if (!Double.isNaN(q) && !(q > 0 && q < 1)) {
      throw new IllegalArgumentException("expected 0 < " + name + " < 1, found " + q);
    }
  }
}
