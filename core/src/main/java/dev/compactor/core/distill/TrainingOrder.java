package dev.compactor.core.distill;

import java.util.Random;

/**
 * The order in which training windows are visited: epoch after epoch, each a fresh permutation
 * drawn from {@code seed + epoch}. The window of every (step, slot) is a pure function of the seed,
 * so a resumed run needs only the step to continue with exactly the data it would have seen,
 * without saving any random-generator state.
 */
public final class TrainingOrder {

  private final int windows;
  private final int batchSize;
  private final long seed;
  private int cachedEpoch = -1;
  private int[] cachedPermutation;

  public TrainingOrder(int windows, int batchSize, long seed) {
    if (windows < 1 || batchSize < 1) {
      throw new IllegalArgumentException(
          "need at least one window and a batch size >= 1, found "
              + windows
              + " windows, batch "
              + batchSize);
    }
    this.windows = windows;
    this.batchSize = batchSize;
    this.seed = seed;
  }

  /** Indices of the windows forming the batch of training step {@code step} (0-based). */
  public int[] batch(long step) {
    int[] out = new int[batchSize];
    for (int j = 0; j < batchSize; j++) {
      long sample = step * batchSize + j;
      int epoch = (int) (sample / windows);
      out[j] = permutation(epoch)[(int) (sample % windows)];
    }
    return out;
  }

  private int[] permutation(int epoch) {
    if (epoch != cachedEpoch) {
      int[] p = new int[windows];
      for (int i = 0; i < windows; i++) {
        p[i] = i;
      }
      Random rnd = new Random(seed + epoch);
      for (int i = windows - 1; i > 0; i--) {
        int k = rnd.nextInt(i + 1);
        int t = p[i];
        p[i] = p[k];
        p[k] = t;
      }
      cachedPermutation = p;
      cachedEpoch = epoch;
    }
    return cachedPermutation;
  }
}
