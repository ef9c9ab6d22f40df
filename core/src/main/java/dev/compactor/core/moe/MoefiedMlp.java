package dev.compactor.core.moe;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;

/**
 * The MLP of a MoEfied dense Llama layer: the SwiGLU neurons are ordered so that expert {@code e}
 * owns rows {@code [e*m, (e+1)*m)} of gate_proj and up_proj and the same columns of down_proj; a
 * linear router [E, hidden] picks each token's k experts (largest logits, a tie to the lower index)
 * and the output is the <em>unweighted</em> sum {@code sum_e down[:, slice_e] (silu(gate[slice_e]
 * x) * up[slice_e] x)} over them. With every expert selected this is the dense MLP exactly (up to
 * float summation order), since the neuron permutation does not change the SwiGLU function.
 *
 * <p>Only routed tokens run through an expert: each expert multiplies the rows of the tokens that
 * chose it, so a token costs {@code k/E} of the dense MLP's multiply-adds plus the router's. The
 * choice is made on the host and is not differentiable (neither is MoEfication's).
 *
 * <p>Memory: every array this class makes is attached to the {@code scope} passed in, including the
 * views of the weight slices, so resident weights do not collect per-pass garbage.
 */
public final class MoefiedMlp {

  private final NDArray gate;
  private final NDArray up;
  private final NDArray down;
  private final NDArray router;
  private final int experts;
  private final int k;
  private final long slice;

  /**
   * @param gate gate_proj weight [inter, hidden]
   * @param up up_proj weight [inter, hidden]
   * @param down down_proj weight [hidden, inter]
   * @param router router weight [E, hidden]
   * @param k experts per token, 1..E
   */
  public MoefiedMlp(NDArray gate, NDArray up, NDArray down, NDArray router, int k) {
    this.gate = gate;
    this.up = up;
    this.down = down;
    this.router = router;
    this.experts = Math.toIntExact(router.getShape().get(0));
    long inter = gate.getShape().get(0);
    if (k < 1 || k > experts || inter % experts != 0) {
      throw new IllegalArgumentException(
          "MoEfied MLP: expected 1 <= k <= E and E dividing the intermediate size, found k "
              + k
              + ", E "
              + experts
              + ", intermediate "
              + inter);
    }
    this.k = k;
    this.slice = inter / experts;
  }

  /**
   * Each token's k experts, largest router logit first (a tie goes to the lower index): entry
   * {@code t*k + j} is token t's j-th choice. {@code flat} is [tokens, hidden].
   */
  public int[] route(NDArray flat) {
    float[] logits = Linear.linear(flat, router).head().toFloatArray();
    return topK(logits, Math.toIntExact(flat.getShape().get(0)), experts, k);
  }

  /** The top {@code k} columns of each row of {@code scores} [n, e], largest first, ties low. */
  public static int[] topK(float[] scores, int n, int e, int k) {
    int[] chosen = new int[n * k];
    for (int t = 0; t < n; t++) {
      boolean[] taken = new boolean[e];
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < e; c++) {
          if (!taken[c] && (best < 0 || scores[t * e + c] > scores[t * e + best])) {
            best = c;
          }
        }
        taken[best] = true;
        chosen[t * k + j] = best;
      }
    }
    return chosen;
  }

  /** The MLP output [tokens, hidden] of {@code flat} [tokens, hidden] routed by {@code chosen}. */
  public NDArray apply(NDManager scope, NDArray flat, int[] chosen) {
    int n = Math.toIntExact(flat.getShape().get(0));
    long hidden = flat.getShape().get(1);
    checkChoices(chosen, n);
    NDList outputs = new NDList();
    long[] rowOfSlot = new long[chosen.length];
    int row = 0;
    for (int e = 0; e < experts; e++) {
      int count = 0;
      for (int c : chosen) {
        if (c == e) {
          count++;
        }
      }
      if (count == 0) {
        continue;
      }
      long[] tokens = new long[count];
      int at = 0;
      for (int s = 0; s < chosen.length; s++) {
        if (chosen[s] == e) {
          tokens[at++] = s / k;
          rowOfSlot[s] = row++;
        }
      }
      NDArray rows = flat.gather(rowIndex(scope, tokens, hidden), 0);
      NDIndex rowsOfE = new NDIndex("{}:{}", e * slice, (e + 1) * slice);
      NDArray g = Linear.linear(rows, local(scope, gate.get(rowsOfE))).head();
      NDArray u = Linear.linear(rows, local(scope, up.get(rowsOfE))).head();
      NDArray act = g.mul(Activation.sigmoid(g)).mul(u);
      NDArray d = local(scope, down.get(new NDIndex(":, {}:{}", e * slice, (e + 1) * slice)));
      outputs.add(Linear.linear(act, d).head());
    }
    NDArray all = outputs.size() == 1 ? outputs.head() : NDArrays.concat(outputs, 0);
    return all.gather(rowIndex(scope, rowOfSlot, hidden), 0)
        .reshape(n, k, hidden)
        .sum(new int[] {1});
  }

  /** {@link #apply} with the router's own choice. */
  public NDArray apply(NDManager scope, NDArray flat) {
    return apply(scope, flat, route(flat));
  }

  /**
   * The dense SwiGLU activation [tokens, inter] with the slices each token did not choose set to 0:
   * what down_proj effectively multiplies (for calibration observers; costs a dense pass).
   */
  public NDArray maskedActivation(NDManager scope, NDArray flat, int[] chosen) {
    int n = Math.toIntExact(flat.getShape().get(0));
    checkChoices(chosen, n);
    long inter = slice * experts;
    NDArray g = Linear.linear(flat, gate).head();
    NDArray act = g.mul(Activation.sigmoid(g)).mul(Linear.linear(flat, up).head());
    float[] mask = new float[Math.toIntExact(n * inter)];
    for (int s = 0; s < chosen.length; s++) {
      int t = s / k;
      long from = t * inter + chosen[s] * slice;
      java.util.Arrays.fill(mask, (int) from, (int) (from + slice), 1f);
    }
    return act.mul(scope.create(mask, new Shape(n, inter)));
  }

  private void checkChoices(int[] chosen, int n) {
    if (chosen.length != n * k) {
      throw new IllegalArgumentException(
          "expected " + k + " experts for each of " + n + " tokens, found " + chosen.length);
    }
  }

  private static NDArray rowIndex(NDManager scope, long[] rows, long cols) {
    return scope.create(rows, new Shape(rows.length, 1)).broadcast(rows.length, cols);
  }

  private static NDArray local(NDManager scope, NDArray a) {
    a.attach(scope);
    return a;
  }
}
