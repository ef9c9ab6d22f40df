package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.train.CosineSchedule;
import dev.compactor.core.train.GradientClipping;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * AdamW (Loshchilov and Hutter 2019, PyTorch's update rule with bias correction and decoupled
 * weight decay) on the train package's warm-up + cosine schedule, with its global gradient-norm
 * clipping. It is its own AdamW rather than {@code train.AdamW} because a resumed distillation run
 * must save and restore the moments and the update count exactly, which that class keeps private.
 *
 * <p>Updates run outside the gradient tape and act in place on the model's own arrays. Scalars are
 * arrays living in this optimizer's manager, never {@code NDArray.mul(Number)} temporaries.
 */
final class StudentOptimizer implements AutoCloseable {

  private static final float BETA1 = 0.9f;
  private static final float BETA2 = 0.999f;
  private static final float EPS = 1e-8f;

  /** The cosine decays to this fraction of the peak rate, not to zero. */
  private static final float MIN_LR_RATIO = 0.1f;

  private final Map<String, NDArray> params;
  private final DistillationSpec spec;
  private final NDManager state;
  private final Map<String, NDArray> m = new LinkedHashMap<>();
  private final Map<String, NDArray> v = new LinkedHashMap<>();
  private final Map<String, NDArray> keep = new LinkedHashMap<>();
  private final NDArray beta1;
  private final NDArray oneMinusBeta1;
  private final NDArray beta2;
  private final NDArray oneMinusBeta2;
  private final NDArray eps;
  private long updates;

  StudentOptimizer(Map<String, NDArray> params, DistillationSpec spec, NDManager parent) {
    this(params, spec, parent, Set.of());
  }

  /**
   * An optimizer that keeps the exact zeros of the parameters named in {@code sparse} at zero: a
   * pruned student stays pruned. Their zero masks are taken now, from the weights as they are.
   */
  StudentOptimizer(
      Map<String, NDArray> params, DistillationSpec spec, NDManager parent, Set<String> sparse) {
    this.params = params;
    this.spec = spec;
    this.state = parent.newSubManager();
    for (Map.Entry<String, NDArray> e : params.entrySet()) {
      e.getValue().setRequiresGradient(true);
      m.put(e.getKey(), state.zeros(e.getValue().getShape()));
      v.put(e.getKey(), state.zeros(e.getValue().getShape()));
      if (sparse.contains(e.getKey())) {
        // a boolean mask: a quarter of a float one, and torch multiplies floats by it in place
        try (NDArray zero = state.zeros(new Shape())) {
          NDArray nonZero = e.getValue().neq(zero);
          nonZero.attach(state);
          keep.put(e.getKey(), nonZero);
        }
      }
    }
    beta1 = state.create(BETA1);
    oneMinusBeta1 = state.create(1f - BETA1);
    beta2 = state.create(BETA2);
    oneMinusBeta2 = state.create(1f - BETA2);
    eps = state.create(EPS);
  }

  /** The learning rate at 0-based {@code step}: linear warm-up, then cosine to 10% of peak. */
  static float learningRate(DistillationSpec spec, long step) {
    return (float)
        new CosineSchedule(
                spec.learningRate(),
                spec.learningRate() * MIN_LR_RATIO,
                spec.warmupSteps(),
                spec.steps())
            .lr((int) step);
  }

  /**
   * Clips, then applies one AdamW update with the gradients now on the parameters, and zeroes those
   * gradients for the next backward pass.
   */
  void step(long step) {
    // Pruned positions get no gradient: they neither count in the clipping norm nor build moments.
    for (Map.Entry<String, NDArray> e : keep.entrySet()) {
      params.get(e.getKey()).getGradient().muli(e.getValue());
    }
    if (spec.maxGradNorm() > 0f) {
      double norm = GradientClipping.clipGlobalNorm(params.values(), spec.maxGradNorm());
      if (!Double.isFinite(norm)) {
        throw new IllegalStateException("gradient norm is " + norm + " at step " + step);
      }
    }
    updates++;
    float lr = learningRate(spec, step);
    try (NDManager s = state.newSubManager()) {
      NDArray decay = s.create(1f - lr * spec.weightDecay());
      double c1 = 1 - Math.pow(BETA1, updates);
      double c2 = 1 - Math.pow(BETA2, updates);
      // lr * mhat / (sqrt(vhat) + eps) == (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps)
      NDArray stepSize = s.create((float) (lr / c1));
      NDArray invSqrtC2 = s.create((float) (1 / Math.sqrt(c2)));
      for (Map.Entry<String, NDArray> e : params.entrySet()) {
        NDArray p = e.getValue();
        NDArray mi = m.get(e.getKey());
        NDArray vi = v.get(e.getKey());
        // Results of ops join their first operand's manager (the model's, for the gradient):
        // every temporary is closed here so that the long-lived managers do not grow per step.
        try (NDArray g = p.getGradient();
            NDArray gm = g.mul(oneMinusBeta1);
            NDArray g2 = g.square()) {
          mi.muli(beta1).addi(gm);
          vi.muli(beta2).addi(g2.muli(oneMinusBeta2));
          if (spec.weightDecay() > 0f) {
            p.muli(decay);
          }
          try (NDArray denom = vi.sqrt();
              NDArray update = mi.div(denom.muli(invSqrtC2).addi(eps))) {
            p.subi(update.muli(stepSize));
          }
          // Gradients accumulate across backward passes. DJL's GradientCollector.zeroGradients
          // walks every array of the engine and leaks two handles per array each call, so the
          // optimizer zeroes exactly its own parameters instead.
          g.subi(g);
        }
      }
    }
    applyMasks();
  }

  /**
   * Sets every pruned position back to exactly 0.0 (with their gradients masked the update leaves
   * them there already; this also covers weights restored from a checkpoint).
   */
  void applyMasks() {
    for (Map.Entry<String, NDArray> e : keep.entrySet()) {
      params.get(e.getKey()).muli(e.getValue());
    }
  }

  /** Names of the parameters whose zeros this optimizer keeps. */
  Set<String> maskedParameters() {
    return Collections.unmodifiableSet(keep.keySet());
  }

  Map<String, NDArray> firstMoments() {
    return Collections.unmodifiableMap(m);
  }

  Map<String, NDArray> secondMoments() {
    return Collections.unmodifiableMap(v);
  }

  /** Updates applied so far (AdamW's t, used by bias correction). */
  long updates() {
    return updates;
  }

  void setUpdates(long t) {
    this.updates = t;
  }

  @Override
  public void close() {
    state.close();
  }
}
