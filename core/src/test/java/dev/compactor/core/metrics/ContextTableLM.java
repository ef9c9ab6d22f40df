package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;
import java.util.SplittableRandom;

/**
 * A small deterministic CausalLM for metric tests whose logits depend on the current token, on the
 * whole prefix (sum of token ids mod 5) and on the position, so window placement changes the answer
 * and a strided evaluation can be checked exactly against a plain-Java loop.
 */
final class ContextTableLM implements CausalLM {

  private final int vocab;
  private final int maxLen;
  private final float[][] table;
  private final float[] w;
  private final float[] u;

  ContextTableLM(int vocab, int maxLen, long seed) {
    this.vocab = vocab;
    this.maxLen = maxLen;
    SplittableRandom r = new SplittableRandom(seed);
    table = new float[vocab][vocab];
    w = new float[vocab];
    u = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      for (int j = 0; j < vocab; j++) {
        table[i][j] = (float) (r.nextGaussian() * 2);
      }
      w[i] = (float) r.nextGaussian();
      u[i] = (float) r.nextGaussian();
    }
  }

  /** Logits of the next token after {@code token} at {@code pos} with the given prefix sum. */
  float[] logitsAt(int token, int prefixSum, int pos) {
    float[] out = new float[vocab];
    for (int v = 0; v < vocab; v++) {
      out[v] = table[token][v] + w[v] * (prefixSum % 5) + u[v] * pos / 10f;
    }
    return out;
  }

  /** Logits for every position of one sequence fed from position 0. */
  float[][] forward(int[] seq) {
    float[][] out = new float[seq.length][];
    int sum = 0;
    for (int j = 0; j < seq.length; j++) {
      sum += seq[j];
      out[j] = logitsAt(seq[j], sum, j);
    }
    return out;
  }

  @Override
  public int vocabSize() {
    return vocab;
  }

  @Override
  public int maxSequenceLength() {
    return maxLen;
  }

  @Override
  public NDArray logits(NDManager manager, NDArray tokens) {
    int b = (int) tokens.getShape().get(0);
    int len = (int) tokens.getShape().get(1);
    int[] ids = tokens.toType(DataType.INT32, false).toIntArray();
    float[] out = new float[b * len * vocab];
    for (int i = 0; i < b; i++) {
      int[] seq = new int[len];
      System.arraycopy(ids, i * len, seq, 0, len);
      float[][] l = forward(seq);
      for (int j = 0; j < len; j++) {
        System.arraycopy(l[j], 0, out, (i * len + j) * vocab, vocab);
      }
    }
    return manager.create(out, new Shape(b, len, vocab));
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    int[] sums = new int[batch];
    int[] position = {0};
    return new Decoder() {
      @Override
      public NDArray step(NDArray tokens) {
        int n = (int) tokens.getShape().get(1);
        int[] ids = tokens.toType(DataType.INT32, false).toIntArray();
        float[] out = new float[batch * n * vocab];
        for (int i = 0; i < batch; i++) {
          for (int j = 0; j < n; j++) {
            int t = ids[i * n + j];
            sums[i] += t;
            System.arraycopy(
                logitsAt(t, sums[i], position[0] + j), 0, out, (i * n + j) * vocab, vocab);
          }
        }
        position[0] += n;
        return manager.create(out, new Shape(batch, n, vocab));
      }

      @Override
      public int position() {
        return position[0];
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public void close() {}
}
