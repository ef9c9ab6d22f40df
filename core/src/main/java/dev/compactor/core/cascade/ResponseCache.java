package dev.compactor.core.cascade;

import java.text.Normalizer;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A response cache replayed over a query log: a query whose key was seen before is a hit and costs
 * nothing; a miss is answered (at the mean cost per request) and stored. Unbounded (every key is
 * kept), so the hit rate is the log's repeat rate under the key. Two keys: the exact text, and the
 * normalised text (Unicode NFKC, lower case, whitespace runs collapsed to one space, trimmed).
 */
public final class ResponseCache {

  /** What a replay gave. */
  public record Replay(int queries, int hits, int distinctKeys) {
    public double hitRate() {
      return queries == 0 ? 0 : (double) hits / queries;
    }
  }

  /** How queries are keyed. */
  public enum Key {
    EXACT,
    NORMALISED;

    String of(String q) {
      return this == EXACT ? q : normalise(q);
    }
  }

  private ResponseCache() {}

  /** The normalised form of a query. */
  public static String normalise(String q) {
    return Normalizer.normalize(q, Normalizer.Form.NFKC)
        .toLowerCase(Locale.ROOT)
        .replaceAll("\\s+", " ")
        .strip();
  }

  /** Replays {@code log} through an empty cache keyed by {@code key}. */
  public static Replay replay(List<String> log, Key key) {
    Set<String> seen = new HashSet<>();
    int hits = 0;
    for (String q : log) {
      if (!seen.add(key.of(q))) {
        hits++;
      }
    }
    return new Replay(log.size(), hits, seen.size());
  }
}
