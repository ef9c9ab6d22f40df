package dev.compactor.core.gguf;

/**
 * llama.cpp's {@code llama-imatrix} definition written out plainly, as the independent reference of
 * the tests: for every input column, the mean over calibration tokens of the squared activation
 * entering the layer. Production code reads the same sums from {@code LinearStats} while
 * calibrating layer by layer ({@code GgufExport.imatrix}); feed this one activation batches ({@code
 * tokens x columns}) from a whole-model forward hook.
 */
public final class ImatrixCollector {

  private final double[] sumSquares;
  private long tokens;

  public ImatrixCollector(int columns) {
    if (columns <= 0) {
      throw new IllegalArgumentException("columns must be positive, found " + columns);
    }
    this.sumSquares = new double[columns];
  }

  /** Adds a batch of activations, one row per token, each of length {@link #columns()}. */
  public void accumulate(float[][] activations) {
    for (float[] row : activations) {
      accumulate(row, 0);
    }
  }

  /** Adds one token's activation vector read from {@code row} at {@code offset}. */
  public void accumulate(float[] row, int offset) {
    if (offset < 0 || offset + sumSquares.length > row.length) {
      throw new IllegalArgumentException(
          "activation row needs "
              + sumSquares.length
              + " values from offset "
              + offset
              + ", found "
              + row.length
              + " in total");
    }
    for (int c = 0; c < sumSquares.length; c++) {
      double v = row[offset + c];
      sumSquares[c] += v * v;
    }
    tokens++;
  }

  public int columns() {
    return sumSquares.length;
  }

  /** Number of activation rows seen. */
  public long tokenCount() {
    return tokens;
  }

  /** Sum of squared activations per column. */
  public double[] sumOfSquares() {
    return sumSquares.clone();
  }

  /**
   * The per-column importance as llama.cpp stores it ({@code sum / count}); throws {@link
   * IllegalStateException} when nothing was collected.
   */
  public float[] importance() {
    if (tokens == 0) {
      throw new IllegalStateException("no activations collected yet");
    }
    float[] out = new float[sumSquares.length];
    for (int c = 0; c < out.length; c++) {
      out[c] = (float) (sumSquares[c] / tokens);
    }
    return out;
  }
}
