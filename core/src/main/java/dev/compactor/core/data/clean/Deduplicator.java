package dev.compactor.core.data.clean;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Exact and near-duplicate removal that keeps the first document of every cluster.
 *
 * <p>Exact: two documents are duplicates when their {@link MinHash#normalise normalised} texts are
 * equal (case, punctuation and spacing do not count).
 *
 * <p>Near: MinHash signatures of word or character n-gram shingles, banded for LSH; a pair that
 * shares a band is a candidate and is joined when its estimated Jaccard similarity reaches the
 * threshold (the check datasketch leaves to the caller and Lee et al. 2021 make with edit
 * similarity). Clusters are the connected components of the joined pairs, so a chain of
 * near-duplicates is one cluster; its earliest document is kept. The defaults follow datasketch's
 * {@code MinHashLSH} (128 hashes, the (b, r) its weighted false-positive / false-negative search
 * picks — 9 bands of 13 at Jaccard 0.8) and Lee et al.'s word 5-gram shingles and 0.8 threshold;
 * Lee et al. used a far longer signature (9 000 hashes in 450 bands of 20) for a web-scale corpus.
 */
public final class Deduplicator {

  /**
   * What dedup found.
   *
   * @param duplicateOf for each dropped document (by index into the input), the index of the kept
   *     document of its cluster
   * @param similarity for each document dropped as a near-duplicate, its estimated Jaccard with the
   *     document it was joined to
   * @param clusters every cluster of two or more: kept index to the indices it absorbed
   */
  public record Result(
      Map<Integer, Integer> duplicateOf,
      Map<Integer, Double> similarity,
      Map<Integer, List<Integer>> clusters) {}

  private Deduplicator() {}

  /** Exact duplicates of {@code texts} by normalised text. */
  public static Result exact(List<String> texts) {
    Map<String, Integer> first = new HashMap<>();
    Map<Integer, Integer> dupOf = new LinkedHashMap<>();
    Map<Integer, List<Integer>> clusters = new LinkedHashMap<>();
    for (int i = 0; i < texts.size(); i++) {
      Integer j = first.putIfAbsent(MinHash.normalise(texts.get(i)), i);
      if (j != null) {
        dupOf.put(i, j);
        clusters.computeIfAbsent(j, k -> new ArrayList<>()).add(i);
      }
    }
    return new Result(dupOf, Map.of(), clusters);
  }

  /**
   * Near duplicates of {@code texts}: MinHash with {@code hashes.numPerm()} hashes banded as {@code
   * bands} (which must fit in the signature), joined at estimated Jaccard >= {@code threshold}.
   */
  public static Result nearDuplicates(
      List<String> texts,
      MinHash hashes,
      LshBands bands,
      MinHash.Shingles kind,
      int shingleSize,
      double threshold) {
    if (bands.bands() * bands.rows() > hashes.numPerm()) {
      throw new IllegalArgumentException(
          String.format(
              Locale.ROOT,
              "%d bands of %d rows need %d hashes, the signature has %d",
              bands.bands(),
              bands.rows(),
              bands.bands() * bands.rows(),
              hashes.numPerm()));
    }
    int n = texts.size();
    long[][] sigs = new long[n][];
    for (int i = 0; i < n; i++) {
      sigs[i] = hashes.signature(texts.get(i), kind, shingleSize);
    }
    int[] parent = new int[n];
    Arrays.setAll(parent, i -> i);
    double[] best = new double[n];
    Arrays.fill(best, Double.NaN);
    List<Map<BandKey, List<Integer>>> buckets = new ArrayList<>();
    for (int b = 0; b < bands.bands(); b++) {
      buckets.add(new HashMap<>());
    }
    for (int i = 0; i < n; i++) {
      java.util.Set<Integer> tried = new java.util.HashSet<>();
      for (int b = 0; b < bands.bands(); b++) {
        int from = b * bands.rows();
        BandKey key = new BandKey(Arrays.copyOfRange(sigs[i], from, from + bands.rows()));
        List<Integer> bucket = buckets.get(b).computeIfAbsent(key, k -> new ArrayList<>());
        for (int j : bucket) {
          if (tried.add(j)) {
            double s = MinHash.estimate(sigs[i], sigs[j]);
            if (s >= threshold) {
              union(parent, i, j);
              if (Double.isNaN(best[i]) || s > best[i]) {
                best[i] = s;
              }
            }
          }
        }
        bucket.add(i);
      }
    }
    Map<Integer, Integer> dupOf = new LinkedHashMap<>();
    Map<Integer, Double> sim = new LinkedHashMap<>();
    Map<Integer, List<Integer>> clusters = new LinkedHashMap<>();
    for (int i = 0; i < n; i++) {
      int root = find(parent, i);
      if (root != i) {
        dupOf.put(i, root);
        sim.put(i, best[i]);
        clusters.computeIfAbsent(root, k -> new ArrayList<>()).add(i);
      }
    }
    return new Result(dupOf, sim, clusters);
  }

  private static int find(int[] parent, int i) {
    while (parent[i] != i) {
      parent[i] = parent[parent[i]];
      i = parent[i];
    }
    return i;
  }

  /** Joins the sets of i and j under the smaller index, so a cluster's root is its first. */
  private static void union(int[] parent, int i, int j) {
    int a = find(parent, i);
    int b = find(parent, j);
    if (a != b) {
      parent[Math.max(a, b)] = Math.min(a, b);
    }
  }

  private record BandKey(long[] rows) {
    @Override
    public boolean equals(Object o) {
      return o instanceof BandKey k && Arrays.equals(rows, k.rows);
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(rows);
    }
  }
}
