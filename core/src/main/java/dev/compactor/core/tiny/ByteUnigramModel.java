package dev.compactor.core.tiny;

import java.nio.charset.StandardCharsets;

/**
 * The simplest byte-level language model: each byte independently, with the frequencies of a
 * training text (add-one smoothed). Its bits per byte on held-out text is the floor a trained model
 * has to beat clearly before its compression damage means anything.
 */
public final class ByteUnigramModel {

  private final double[] log2Prob = new double[256];

  private ByteUnigramModel(long[] counts) {
    long total = 0;
    for (long c : counts) {
      total += c + 1;
    }
    for (int b = 0; b < 256; b++) {
      log2Prob[b] = Math.log((counts[b] + 1.0) / total) / Math.log(2);
    }
  }

  /** Byte frequencies of {@code text}'s UTF-8 encoding. */
  public static ByteUnigramModel train(String text) {
    long[] counts = new long[256];
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      counts[b & 0xFF]++;
    }
    return new ByteUnigramModel(counts);
  }

  /** Cross-entropy of {@code text}'s UTF-8 bytes under this model, in bits per byte. */
  public double bitsPerByte(String text) {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    if (bytes.length == 0) {
      throw new IllegalArgumentException("cannot score an empty text");
    }
    double bits = 0;
    for (byte b : bytes) {
      bits -= log2Prob[b & 0xFF];
    }
    return bits / bytes.length;
  }
}
