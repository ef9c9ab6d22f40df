package dev.compactor.core.data.clean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DeduplicatorTest {

  /** Words w{from} .. w{to - 1}: with 1-word shingles, two such texts have a known Jaccard. */
  private static String words(int from, int to) {
    StringBuilder s = new StringBuilder();
    for (int i = from; i < to; i++) {
      s.append("w").append(i).append(' ');
    }
    return s.toString();
  }

  /**
   * Near dedup with bands of 2 rows, so nearly every pair above ~0.3 is a candidate and the test is
   * of the threshold check (the optimal banding's S-curve gives only ~50-90 % recall near the
   * threshold, by design).
   */
  private static Deduplicator.Result near(List<String> texts, int perm, double threshold) {
    MinHash mh = new MinHash(perm, 7);
    return Deduplicator.nearDuplicates(
        texts, mh, new LshBands(perm / 2, 2), MinHash.Shingles.WORDS, 1, threshold);
  }

  @Test
  void identicalDocumentsKeepOne() {
    List<String> docs =
        List.of("The same text.", "the  SAME text", "Other text.", "The same text.");
    Deduplicator.Result exact = Deduplicator.exact(docs);
    assertEquals(Map.of(1, 0, 3, 0), exact.duplicateOf());
    assertEquals(Map.of(0, List.of(1, 3)), exact.clusters());
    Deduplicator.Result near = near(docs, 128, 0.8);
    assertEquals(Map.of(1, 0, 3, 0), near.duplicateOf());
    assertEquals(1.0, near.similarity().get(1), 0);
  }

  @Test
  void pairAboveThresholdIsJoinedPairBelowIsNot() {
    // J(A, B) = 180 / 220 = 0.818 (> 0.75), J(A, C) = 140 / 260 = 0.538, J(B, C) = 160 / 240 =
    // 0.667
    String a = words(0, 200);
    String b = words(20, 220);
    String c = words(60, 260);
    Deduplicator.Result r = near(List.of(a, b, c), 256, 0.75);
    assertEquals(Map.of(1, 0), r.duplicateOf());
    assertEquals(0.818, r.similarity().get(1), 4 * Math.sqrt(0.818 * 0.182 / 256));
    // J = 0.6 under a 0.7 threshold, 0.818 over (1024 hashes: standard error <= 0.015)
    Deduplicator.Result under = near(List.of(words(0, 100), words(25, 125)), 1024, 0.7);
    assertTrue(under.duplicateOf().isEmpty(), under.similarity().toString());
    Deduplicator.Result over = near(List.of(words(0, 100), words(10, 110)), 1024, 0.7);
    assertEquals(Map.of(1, 0), over.duplicateOf());
  }

  @Test
  void optimalBandingFindsCloseCopiesAndSkipsDistantPairs() {
    // J = 190 / 210 = 0.905 and 0.95 (found), 0.25 (not even a candidate at 9 bands of 13)
    List<String> docs = List.of(words(0, 200), words(10, 210), words(0, 190), words(100, 300));
    MinHash mh = new MinHash(128, 7);
    LshBands bands = LshBands.optimal(0.8, 128, 0.5, 0.5);
    assertTrue(bands.candidateProbability(0.25) < 1e-6);
    Deduplicator.Result r =
        Deduplicator.nearDuplicates(docs, mh, bands, MinHash.Shingles.WORDS, 1, 0.8);
    assertEquals(Map.of(1, 0, 2, 0), r.duplicateOf());
  }

  @Test
  void aChainOfNearDuplicatesIsOneClusterKeptAtItsFirst() {
    // J(A, B) = 0.905, J(B, C) = 0.869, J(A, C) = 0.786 < 0.83: C joins through B
    List<String> docs = List.of(words(0, 100), words(5, 105), words(12, 112), words(500, 600));
    Deduplicator.Result r = near(docs, 1024, 0.83);
    assertEquals(Map.of(1, 0, 2, 0), r.duplicateOf());
    assertEquals(Map.of(0, List.of(1, 2)), r.clusters());
  }

  @Test
  void characterShinglesFindAnEditedCopy() {
    String a =
        "The Commission will present its proposal on energy policy to the Council next week.";
    String b =
        "The Commission will present its proposals on energy policy to the Council next week!";
    String c = "Parliament adopted the resolution on fisheries by a large majority this morning.";
    MinHash mh = new MinHash(128, 1);
    Deduplicator.Result r =
        Deduplicator.nearDuplicates(
            List.of(a, b, c),
            mh,
            LshBands.optimal(0.8, 128, 0.5, 0.5),
            MinHash.Shingles.CHARS,
            5,
            0.8);
    assertEquals(Map.of(1, 0), r.duplicateOf());
  }
}
