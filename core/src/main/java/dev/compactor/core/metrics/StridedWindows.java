package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * The sliding windows of Hugging Face's strided perplexity recipe: windows of at most {@code
 * seqLen} tokens start every {@code stride} tokens, and each window scores only the tokens no
 * earlier window scored, so every token but the first is scored exactly once with at least {@code
 * seqLen - stride} tokens of context (except in the first window).
 *
 * <p>One deliberate difference from Hugging Face's loop: with {@code stride == seqLen} their
 * disjoint windows never score a window's first token (the label shift drops it), which leaves one
 * unscored token per window and biases bits per byte. Here the stride is capped at {@code seqLen -
 * 1}, so consecutive windows overlap by exactly the one token the shift needs.
 */
final class StridedWindows {

  /**
   * Tokens {@code [begin, end)} are fed; tokens {@code [scoredFrom, end)} are scored, each by the
   * logits of the position before it.
   */
  record Window(int begin, int end, int scoredFrom) {
    int length() {
      return end - begin;
    }

    int scored() {
      return end - scoredFrom;
    }
  }

  private StridedWindows() {}

  static List<Window> plan(int tokens, int seqLen, int stride) {
    if (tokens < 2) {
      throw new IllegalArgumentException(
          "expected at least 2 tokens to score, found " + tokens + " (the text is too short)");
    }
    if (seqLen < 2) {
      throw new IllegalArgumentException("expected seqLen >= 2, found " + seqLen);
    }
    if (stride < 1 || stride > seqLen) {
      throw new IllegalArgumentException(
          "expected 1 <= stride <= seqLen (" + seqLen + "), found " + stride);
    }
    int step = Math.min(stride, seqLen - 1);
    List<Window> windows = new ArrayList<>();
    int prevEnd = 0;
    for (int begin = 0; ; begin += step) {
      int end = Math.min(begin + seqLen, tokens);
      int from = Math.max(prevEnd, begin + 1);
      if (end > from) {
        windows.add(new Window(begin, end, from));
      }
      prevEnd = end;
      if (end == tokens) {
        return windows;
      }
    }
  }

  /** Consecutive windows of equal length, at most {@code batchSize} per group. */
  static List<List<Window>> batches(List<Window> windows, int batchSize) {
    List<List<Window>> out = new ArrayList<>();
    List<Window> current = new ArrayList<>();
    for (Window w : windows) {
      if (!current.isEmpty()
          && (current.size() == batchSize || current.get(0).length() != w.length())) {
        out.add(current);
        current = new ArrayList<>();
      }
      current.add(w);
    }
    if (!current.isEmpty()) {
      out.add(current);
    }
    return out;
  }

  /** The batch's input ids, {@code [batch, length]} int32. */
  static NDArray input(NDManager manager, int[] tokens, List<Window> batch) {
    int len = batch.get(0).length();
    int[] ids = new int[batch.size() * len];
    for (int b = 0; b < batch.size(); b++) {
      System.arraycopy(tokens, batch.get(b).begin(), ids, b * len, len);
    }
    return manager.create(ids, new Shape(batch.size(), len));
  }

  /**
   * The token each position predicts, {@code [batch, length, 1]} int64, 0 where nothing is scored
   * (the last position of a window).
   */
  static NDArray targets(NDManager manager, int[] tokens, List<Window> batch) {
    int len = batch.get(0).length();
    long[] t = new long[batch.size() * len];
    for (int b = 0; b < batch.size(); b++) {
      Window w = batch.get(b);
      for (int j = 0; j < len - 1; j++) {
        t[b * len + j] = tokens[w.begin() + j + 1];
      }
    }
    return manager.create(t, new Shape(batch.size(), len, 1));
  }

  /** Windows per batch that keep the logits of one batch around {@code 2^25} floats. */
  static int autoBatchSize(int seqLen, int vocab) {
    long perWindow = (long) seqLen * vocab;
    return (int) Math.max(1, Math.min(16, (1L << 25) / perWindow));
  }
}
