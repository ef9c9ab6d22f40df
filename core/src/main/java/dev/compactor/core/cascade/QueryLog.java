package dev.compactor.core.cascade;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * A synthetic repeated query log, built from a list of distinct prompts: each query draws prompt
 * {@code k} (rank order = the list's order) with probability proportional to {@code 1 / (k + 1)^s}
 * (Zipf), and with probability {@code variantRate} is sent as a surface variant of it (upper case
 * first letter toggled, doubled inner spaces, a trailing space or newline) that a normalised cache
 * treats as the same query. Deterministic for a seed.
 *
 * <p>This is not a production log: its hit rate follows from its parameters (how many distinct
 * prompts, how skewed, how long), and a report must say so.
 */
public final class QueryLog {

  private QueryLog() {}

  /** {@code length} queries over {@code prompts}. */
  public static List<String> zipf(
      List<String> prompts, int length, double exponent, double variantRate, long seed) {
    if (prompts.isEmpty()) {
      throw new IllegalArgumentException("a query log needs at least one prompt");
    }
    if (exponent < 0) {
      throw new IllegalArgumentException("the Zipf exponent must be >= 0, found " + exponent);
    }
    double[] cdf = new double[prompts.size()];
    double sum = 0;
    for (int k = 0; k < cdf.length; k++) {
      sum += 1 / Math.pow(k + 1, exponent);
      cdf[k] = sum;
    }
    SplittableRandom random = new SplittableRandom(seed);
    List<String> log = new ArrayList<>(length);
    for (int i = 0; i < length; i++) {
      double u = random.nextDouble() * sum;
      int lo = 0;
      int hi = cdf.length - 1;
      while (lo < hi) {
        int mid = (lo + hi) >>> 1;
        if (cdf[mid] < u) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      String q = prompts.get(lo);
      log.add(random.nextDouble() < variantRate ? variant(q, random.nextInt(3)) : q);
    }
    return log;
  }

  static String variant(String q, int kind) {
    return switch (kind) {
      case 0 ->
          q.isEmpty()
              ? q
              : (Character.isUpperCase(q.charAt(0))
                      ? q.substring(0, 1).toLowerCase(Locale.ROOT)
                      : q.substring(0, 1).toUpperCase(Locale.ROOT))
                  + q.substring(1);
      case 1 -> q.replaceFirst(" ", "  ");
      default -> q + (q.length() % 2 == 0 ? " " : "\n");
    };
  }
}
