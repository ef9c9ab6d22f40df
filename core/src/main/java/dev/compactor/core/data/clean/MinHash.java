package dev.compactor.core.data.clean;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * MinHash signatures (Broder 1997) of a document's shingle set: {@code numPerm} universal hashes
 * {@code h_i(x) = (a_i x + b_i) mod (2^61 - 1)} drawn from a seeded generator, the minimum of each
 * over the set. The share of equal positions of two signatures estimates the Jaccard similarity of
 * the two sets; its standard error is {@code sqrt(J (1 - J) / numPerm)}.
 *
 * <p>The hash family is the one datasketch's {@code MinHash} uses (a Mersenne-prime modulus with
 * {@code a} in [1, p), {@code b} in [0, p)); shingles are hashed to 61 bits first with a 64-bit
 * FNV-1a of their UTF-8 bytes, finished with a SplitMix64 mix. The same seed gives the same
 * signatures on every machine.
 */
public final class MinHash {

  /** The Mersenne prime 2^61 - 1, the modulus of the hash family. */
  static final long PRIME = (1L << 61) - 1;

  /** How a document is cut into shingles. */
  public enum Shingles {
    /** Runs of {@code n} consecutive words (Lee et al. 2021 use word 5-grams). */
    WORDS,
    /** Runs of {@code n} consecutive characters of the normalised text. */
    CHARS
  }

  private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}]+");
  private static final Pattern SPACE = Pattern.compile("\\s+");

  private final long[] a;
  private final long[] b;

  /** {@code numPerm} hash functions drawn with {@code seed}. */
  public MinHash(int numPerm, long seed) {
    if (numPerm < 1) {
      throw new IllegalArgumentException("expected numPerm >= 1, found " + numPerm);
    }
    SplittableRandom random = new SplittableRandom(seed);
    a = new long[numPerm];
    b = new long[numPerm];
    for (int i = 0; i < numPerm; i++) {
      a[i] = 1 + random.nextLong(PRIME - 1);
      b[i] = random.nextLong(PRIME);
    }
  }

  public int numPerm() {
    return a.length;
  }

  /**
   * The signature of a set of 61-bit shingle hashes; an empty set gives all {@code Long.MAX_VALUE}
   * (so two empty documents are identical, as datasketch's empty MinHash are).
   */
  public long[] signature(Set<Long> shingleHashes) {
    long[] sig = new long[a.length];
    java.util.Arrays.fill(sig, Long.MAX_VALUE);
    for (long x : shingleHashes) {
      for (int i = 0; i < a.length; i++) {
        long h = mulAddMod(a[i], x, b[i]);
        if (h < sig[i]) {
          sig[i] = h;
        }
      }
    }
    return sig;
  }

  /** The signature of {@code text}'s shingles. */
  public long[] signature(String text, Shingles kind, int n) {
    return signature(shingles(text, kind, n));
  }

  /** Share of equal positions: the MinHash estimate of the Jaccard similarity. */
  public static double estimate(long[] s1, long[] s2) {
    if (s1.length != s2.length) {
      throw new IllegalArgumentException(
          "signatures of " + s1.length + " and " + s2.length + " hashes cannot be compared");
    }
    int equal = 0;
    for (int i = 0; i < s1.length; i++) {
      if (s1[i] == s2[i]) {
        equal++;
      }
    }
    return (double) equal / s1.length;
  }

  /** The exact Jaccard similarity |A ∩ B| / |A ∪ B| (1 for two empty sets). */
  public static double jaccard(Set<Long> s1, Set<Long> s2) {
    if (s1.isEmpty() && s2.isEmpty()) {
      return 1;
    }
    int common = 0;
    for (long x : s1) {
      if (s2.contains(x)) {
        common++;
      }
    }
    return (double) common / (s1.size() + s2.size() - common);
  }

  /**
   * The hashed shingle set of {@code text} after {@link #normalise}: word or character n-grams; a
   * text shorter than {@code n} units is one shingle of all of them.
   */
  public static Set<Long> shingles(String text, Shingles kind, int n) {
    if (n < 1) {
      throw new IllegalArgumentException("expected a shingle size >= 1, found " + n);
    }
    String norm = normalise(text);
    Set<Long> out = new HashSet<>();
    if (kind == Shingles.CHARS) {
      int[] cps = norm.codePoints().toArray();
      if (cps.length > 0 && cps.length <= n) {
        out.add(hash(norm));
      }
      for (int i = 0; i + n <= cps.length && cps.length > n; i++) {
        out.add(hash(new String(cps, i, n)));
      }
      return out;
    }
    String[] words = norm.isEmpty() ? new String[0] : SPACE.split(norm);
    if (words.length == 0) {
      return out;
    }
    if (words.length < n) {
      out.add(hash(String.join(" ", words)));
      return out;
    }
    for (int i = 0; i + n <= words.length; i++) {
      StringBuilder s = new StringBuilder(words[i]);
      for (int j = 1; j < n; j++) {
        s.append(' ').append(words[i + j]);
      }
      out.add(hash(s.toString()));
    }
    return out;
  }

  /**
   * NFKC, lower case, words of letters and digits only, joined by single spaces: the text two
   * documents must share to count as exact duplicates, and what shingles are cut from.
   */
  public static String normalise(String text) {
    String t = Normalizer.normalize(text, Normalizer.Form.NFKC).toLowerCase(Locale.ROOT);
    StringBuilder out = new StringBuilder(t.length());
    var m = WORD.matcher(t);
    while (m.find()) {
      if (out.length() > 0) {
        out.append(' ');
      }
      out.append(m.group());
    }
    return out.toString();
  }

  /** A 61-bit hash of {@code s}'s UTF-8 bytes (FNV-1a 64, SplitMix64 finish). */
  static long hash(String s) {
    long h = 0xcbf29ce484222325L;
    for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
      h ^= x & 0xFF;
      h *= 0x100000001b3L;
    }
    h ^= h >>> 30;
    h *= 0xbf58476d1ce4e5b9L;
    h ^= h >>> 27;
    h *= 0x94d049bb133111ebL;
    h ^= h >>> 31;
    return h & PRIME;
  }

  /** (a x + b) mod (2^61 - 1) for a, x, b below 2^61, without overflow. */
  static long mulAddMod(long a, long x, long b) {
    long hi = Math.multiplyHigh(a, x);
    long lo = a * x;
    // a*x = hi*2^64 + lo (unsigned lo); 2^64 = 8 * 2^61 ≡ 8 (mod p)
    long r = (lo & PRIME) + (lo >>> 61) + (hi << 3);
    r = (r & PRIME) + (r >>> 61);
    r += b;
    r = (r & PRIME) + (r >>> 61);
    return r >= PRIME ? r - PRIME : r;
  }
}
