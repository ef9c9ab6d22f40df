package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class MemoizedLogitsTest {

  static final int VOCAB = 11;

  static int[] tokens(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(VOCAB);
    }
    return t;
  }

  @Test
  void aRepeatedInputGetsTheSameLogitsWithoutAnotherForwardPass() {
    ContextTableLM base = new ContextTableLM(VOCAB, 64, 1);
    try (NDManager m = NDManager.newBaseManager();
        MemoizedLogits memo = new MemoizedLogits(base, 1 << 20)) {
      NDArray a = m.create(tokens(2 * 16, 5), new Shape(2, 16));
      NDArray b = m.create(tokens(2 * 16, 6), new Shape(2, 16));
      float[] direct = base.logits(m, a).toFloatArray();
      float[] first = memo.logits(m, a).toFloatArray();
      NDArray again = memo.logits(m, a);
      assertArrayEquals(direct, first);
      assertArrayEquals(direct, again.toFloatArray());
      assertArrayEquals(new long[] {2, 16, VOCAB}, again.getShape().getShape());
      assertEquals(1, memo.computed());
      // another input is computed, not confused with the first
      assertArrayEquals(base.logits(m, b).toFloatArray(), memo.logits(m, b).toFloatArray());
      assertEquals(2, memo.computed());
      assertEquals(2L * 2 * 16 * VOCAB * 4, memo.storedBytes());
    }
  }

  @Test
  void beyondItsBudgetItComputesEveryTime() {
    ContextTableLM base = new ContextTableLM(VOCAB, 64, 1);
    try (NDManager m = NDManager.newBaseManager();
        MemoizedLogits memo = new MemoizedLogits(base, 16 * VOCAB * 4 - 1)) {
      NDArray a = m.create(tokens(16, 5), new Shape(1, 16));
      float[] direct = base.logits(m, a).toFloatArray();
      assertArrayEquals(direct, memo.logits(m, a).toFloatArray());
      assertArrayEquals(direct, memo.logits(m, a).toFloatArray());
      assertEquals(2, memo.computed());
      assertEquals(0, memo.storedBytes());
    }
  }

  @Test
  void aDivergenceEvaluationAgainstTheMemoizedBaselineIsTheSame() {
    ContextTableLM base = new ContextTableLM(VOCAB, 64, 1);
    ContextTableLM other = new ContextTableLM(VOCAB, 64, 2);
    int[] t = tokens(150, 9);
    DivergenceEvaluator eval = new DivergenceEvaluator(32, 32, 2);
    DivergenceResult plain = eval.evaluate(base, other, t, ProgressListener.NONE);
    try (MemoizedLogits memo = MemoizedLogits.of(base)) {
      DivergenceResult first = eval.evaluate(memo, other, t, ProgressListener.NONE);
      long passes = memo.computed();
      DivergenceResult second = eval.evaluate(memo, other, t, ProgressListener.NONE);
      assertEquals(plain, first);
      assertEquals(plain, second);
      assertEquals(passes, memo.computed(), "the second evaluation reused every window");
    }
  }
}
