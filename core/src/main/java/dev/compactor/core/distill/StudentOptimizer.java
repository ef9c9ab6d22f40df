package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter 2019, PyTorch's update rule with bias correction and decoupled
 * weight decay) on a linear warm-up + cosine learning-rate schedule, with global gradient-norm
 * clipping. The moments are exposed so that a checkpoint can save and restore them exactly.
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
  private final NDArray beta1;
  private final NDArray oneMinusBeta1;
  private final NDArray beta2;
  private final NDArray oneMinusBeta2;
  private final NDArray eps;
  private long updates;

  StudentOptimizer(Map<String, NDArray> params, DistillationSpec spec, NDManager parent) {
    this.params = params;
    this.spec = spec;
    this.state = parent.newSubManager();
    for (Map.Entry<String, NDArray> e : params.entrySet()) {
      e.getValue().setRequiresGradient(true);
      m.put(e.getKey(), state.zeros(e.getValue().getShape()));
      v.put(e.getKey(), state.zeros(e.getValue().getShape()));
    }
    beta1 = state.create(BETA1);
    oneMinusBeta1 = state.create(1f - BETA1);
    beta2 = state.create(BETA2);
    oneMinusBeta2 = state.create(1f - BETA2);
    eps = state.create(EPS);
  }

  /** The learning rate at 0-based {@code step}: linear warm-up, then cosine to 10% of peak. */
  static float learningRate(DistillationSpec spec, long step) {
    float peak = spec.learningRate();
    if (step < spec.warmupSteps()) {
      return peak * (step + 1) / spec.warmupSteps();
    }
    double progress =
        (double) (step - spec.warmupSteps()) / Math.max(1, spec.steps() - spec.warmupSteps());
    double cosine = 0.5 * (1 + Math.cos(Math.PI * Math.min(1.0, progress)));
    return (float) (peak * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * cosine));
  }

  /** Clips, then applies one AdamW update with the gradients now on the parameters. */
  void step(long step) {
    updates++;
    float lr = learningRate(spec, step);
    try (NDManager s = state.newSubManager()) {
      float clip = clipFactor(s);
      NDArray gradScale = s.create(clip);
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
        try (NDArray grad = p.getGradient();
            NDArray g = grad.mul(gradScale);
            NDArray gm = g.mul(oneMinusBeta1);
            NDArray g2 = g.square()) {
          mi.muli(beta1).addi(gm);
          vi.muli(beta2).addi(g2.muli(oneMinusBeta2));
        }
        if (spec.weightDecay() > 0f) {
          p.muli(decay);
        }
        try (NDArray denom = vi.sqrt();
            NDArray update = mi.div(denom.muli(invSqrtC2).addi(eps))) {
          p.subi(update.muli(stepSize));
        }
      }
    }
  }

  /** Factor bringing the global gradient norm down to {@code maxGradNorm} (1 if below). */
  private float clipFactor(NDManager s) {
    if (spec.maxGradNorm() <= 0f) {
      return 1f;
    }
    double sumSquares = 0;
    for (NDArray p : params.values()) {
      try (NDArray g = p.getGradient();
          NDArray sq = g.square();
          NDArray sum = sq.sum()) {
        sumSquares += sum.getFloat();
      }
    }
    double norm = Math.sqrt(sumSquares);
    if (!Double.isFinite(norm)) {
      throw new IllegalStateException("gradient norm is " + norm + ": training diverged");
    }
    return norm > spec.maxGradNorm() ? (float) (spec.maxGradNorm() / (norm + 1e-6)) : 1f;
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
