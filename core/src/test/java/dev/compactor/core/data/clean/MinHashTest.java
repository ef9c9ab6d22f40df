package dev.compactor.core.data.clean;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class MinHashTest {

  /** Sets {0..n) and {n-common.. 2n-common): Jaccard common / (2n - common). */
  private static Set<Long> range(long from, long to) {
    Set<Long> s = new HashSet<>();
    for (long i = from; i < to; i++) {
      s.add(MinHash.hash("w" + i));
    }
    return s;
  }

  @Test
  void mulAddModMatchesBigIntegerArithmetic() {
    SplittableRandom r = new SplittableRandom(3);
    BigInteger p = BigInteger.valueOf(MinHash.PRIME);
    for (int i = 0; i < 10_000; i++) {
      long a = r.nextLong(MinHash.PRIME);
      long x = r.nextLong(MinHash.PRIME);
      long b = r.nextLong(MinHash.PRIME);
      long want =
          BigInteger.valueOf(a)
              .multiply(BigInteger.valueOf(x))
              .add(BigInteger.valueOf(b))
              .mod(p)
              .longValueExact();
      assertEquals(want, MinHash.mulAddMod(a, x, b));
    }
    long top = MinHash.PRIME - 1;
    assertEquals(
        BigInteger.valueOf(top)
            .multiply(BigInteger.valueOf(top))
            .add(BigInteger.valueOf(top))
            .mod(p)
            .longValueExact(),
        MinHash.mulAddMod(top, top, top));
  }

  @Test
  void estimateIsWithinFourStandardErrorsOfExactJaccard() {
    int perm = 512;
    MinHash mh = new MinHash(perm, 11);
    // |A| = |B| = 200, common c: J = c / (400 - c)
    for (int common : new int[] {0, 36, 92, 133, 164, 190, 200}) {
      Set<Long> a = range(0, 200);
      Set<Long> b = range(200 - common, 400 - common);
      double exact = MinHash.jaccard(a, b);
      assertEquals((double) common / (400 - common), exact, 1e-12);
      double est = MinHash.estimate(mh.signature(a), mh.signature(b));
      double se = Math.sqrt(exact * (1 - exact) / perm);
      assertEquals(exact, est, 4 * se + 1e-9, "J = " + exact);
    }
  }

  @Test
  void estimateErrorShrinksAsOneOverRootOfSignatureLength() {
    Set<Long> a = range(0, 300);
    Set<Long> b = range(100, 400); // J = 200 / 400 = 0.5
    double[] rms = new double[2];
    int[] perms = {64, 1024};
    for (int k = 0; k < 2; k++) {
      double sum = 0;
      for (long seed = 0; seed < 20; seed++) {
        MinHash mh = new MinHash(perms[k], seed);
        double e = MinHash.estimate(mh.signature(a), mh.signature(b)) - 0.5;
        sum += e * e;
      }
      rms[k] = Math.sqrt(sum / 20);
    }
    // standard errors 0.0625 and 0.0156
    assertTrue(rms[0] > 0.03 && rms[0] < 0.1, "rms at 64 hashes " + rms[0]);
    assertTrue(rms[1] < 0.03, "rms at 1024 hashes " + rms[1]);
  }

  @Test
  void sameSeedSameSignatureOtherSeedOther() {
    Set<Long> s = range(0, 50);
    assertArrayEquals(new MinHash(64, 5).signature(s), new MinHash(64, 5).signature(s));
    assertNotEquals(
        List.of(new MinHash(64, 5).signature(s)[0]), List.of(new MinHash(64, 6).signature(s)[0]));
  }

  @Test
  void shinglesAreNgramsOfTheNormalisedText() {
    assertEquals("hello world 42", MinHash.normalise("  Hello,   WORLD! 42 "));
    Set<Long> words = MinHash.shingles("a b c d", MinHash.Shingles.WORDS, 2);
    assertEquals(Set.of(MinHash.hash("a b"), MinHash.hash("b c"), MinHash.hash("c d")), words);
    assertEquals(Set.of(MinHash.hash("a b")), MinHash.shingles("A, b", MinHash.Shingles.WORDS, 5));
    Set<Long> chars = MinHash.shingles("abcab", MinHash.Shingles.CHARS, 3);
    assertEquals(Set.of(MinHash.hash("abc"), MinHash.hash("bca"), MinHash.hash("cab")), chars);
    assertEquals(Set.of(MinHash.hash("ab")), MinHash.shingles("ab", MinHash.Shingles.CHARS, 3));
    assertTrue(MinHash.shingles("!!", MinHash.Shingles.WORDS, 3).isEmpty());
  }

  @Test
  void optimalBandsMatchDatasketchSearch() {
    // datasketch's _optimal_param(threshold, num_perm, 0.5, 0.5), evaluated with scipy's quad
    // (core/src/test/python/lsh_optimal_param.py)
    assertEquals(new LshBands(9, 13), LshBands.optimal(0.8, 128, 0.5, 0.5));
    assertEquals(new LshBands(25, 5), LshBands.optimal(0.5, 128, 0.5, 0.5));
    assertEquals(new LshBands(5, 25), LshBands.optimal(0.9, 128, 0.5, 0.5));
    assertEquals(new LshBands(25, 10), LshBands.optimal(0.7, 256, 0.5, 0.5));
    assertEquals(new LshBands(17, 15), LshBands.optimal(0.8, 256, 0.5, 0.5));
  }

  @Test
  void candidateProbabilityIsTheBandingSCurve() {
    LshBands b = new LshBands(20, 5);
    assertEquals(1 - Math.pow(1 - Math.pow(0.6, 5), 20), b.candidateProbability(0.6), 1e-15);
    assertEquals(0, b.candidateProbability(0), 0);
    assertEquals(1, b.candidateProbability(1), 0);
  }
}
