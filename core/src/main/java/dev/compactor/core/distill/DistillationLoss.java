package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;

/**
 * The knowledge-distillation objective (Hinton et al. 2015): {@code alpha * T^2 * KL(softmax(t/T)
 * || softmax(s/T)) + (1 - alpha) * CE(s, y)}, both terms averaged over token positions, where
 * {@code t} are the teacher's logits, {@code s} the student's and {@code y} the true next tokens.
 * The T^2 factor keeps the soft-target gradients on the scale of the hard-target ones as T grows.
 *
 * <p>The scalars live in long-lived constant arrays created once in the constructor's manager:
 * DJL's {@code mul(Number)} frees its temporary scalar right after the op while autograd still
 * references it, which corrupts gradients (see the stack notes).
 */
public final class DistillationLoss implements AutoCloseable {

  private final float temperature;
  private final float alpha;
  private final NDArray invTemperature;
  private final NDArray softWeight;
  private final NDArray hardWeight;
  private final NDArray one;

  /** The value and its two terms, each averaged over positions. */
  public record Terms(NDArray loss, NDArray kl, NDArray crossEntropy) {}

  /**
   * @param manager owns the constants; keep it open as long as this loss is used
   * @param temperature softening temperature T > 0
   * @param alpha weight of the soft (KL) term in [0, 1]
   */
  public DistillationLoss(NDManager manager, float temperature, float alpha) {
    if (!(temperature > 0f) || Float.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature must be > 0, found " + temperature);
    }
    if (!(alpha >= 0f && alpha <= 1f)) {
      throw new IllegalArgumentException("alpha must be in [0, 1], found " + alpha);
    }
    this.temperature = temperature;
    this.alpha = alpha;
    this.invTemperature = manager.create(1f / temperature);
    this.softWeight = manager.create(alpha * temperature * temperature);
    this.hardWeight = manager.create(1f - alpha);
    this.one = manager.create(1f);
  }

  public float temperature() {
    return temperature;
  }

  public float alpha() {
    return alpha;
  }

  /**
   * The loss for {@code studentLogits} and {@code teacherLogits} of shape {@code [..., vocab]} and
   * integer {@code targets} of shape {@code [...]} (the leading shapes equal). The teacher side is
   * treated as a constant.
   */
  public NDArray compute(NDArray studentLogits, NDArray teacherLogits, NDArray targets) {
    return terms(studentLogits, teacherLogits, targets).loss();
  }

  /** As {@link #compute}, also returning the KL (at temperature T) and cross-entropy terms. */
  public Terms terms(NDArray studentLogits, NDArray teacherLogits, NDArray targets) {
    return terms(studentLogits, teacherLogits, targets, null);
  }

  /**
   * As {@link #terms(NDArray, NDArray, NDArray)}, counting only the positions where {@code mask}
   * ({@code [...]} of 0/1 like {@code targets}; null: every position) is 1: both terms become sums
   * over the kept positions divided by their number, so a masked position contributes nothing to
   * the value or the gradient (task distillation scores completion tokens only).
   */
  public Terms terms(NDArray studentLogits, NDArray teacherLogits, NDArray targets, NDArray mask) {
    if (!studentLogits.getShape().equals(teacherLogits.getShape())) {
      throw new IllegalArgumentException(
          "student and teacher logits must have the same shape, found "
              + studentLogits.getShape()
              + " and "
              + teacherLogits.getShape());
    }
    int vocab = checkTargets(studentLogits, targets, mask);
    NDArray student = studentLogits.reshape(-1, vocab);
    NDArray teacher = teacherLogits.reshape(-1, vocab).stopGradient();

    NDArray studentLogSoft = student.mul(invTemperature).logSoftmax(1);
    NDArray teacherLogSoft = teacher.mul(invTemperature).logSoftmax(1);
    NDArray kl = teacherLogSoft.exp().mul(teacherLogSoft.sub(studentLogSoft)).sum(new int[] {1});
    return combine(student, kl, targets, mask);
  }

  /**
   * The loss against a teacher known only by its top-k log-probabilities at temperature 1 ({@code
   * teacherLogProbs}, {@code [..., k]}) and their token ids ({@code teacherIndices}, same shape):
   * the KL term is taken over the teacher's top-k support S, both distributions renormalised on S,
   *
   * <pre>
   *   p_i = softmax_{i in S}(log p_i / T),  q_i = softmax_{i in S}(s_i / T),
   *   KL_S = sum_{i in S} p_i (log p_i - log q_i)
   * </pre>
   *
   * (dividing a temperature-1 log-probability by T and renormalising gives exactly the teacher's
   * softmax at T restricted to S). The teacher's probability mass outside S is dropped, not spread:
   * with k = vocab this is the full KL of {@link #terms}. The cross-entropy term uses the student's
   * full distribution and the true next tokens as before.
   */
  public Terms topKTerms(
      NDArray studentLogits,
      NDArray teacherLogProbs,
      NDArray teacherIndices,
      NDArray targets,
      NDArray mask) {
    if (!teacherLogProbs.getShape().equals(teacherIndices.getShape())) {
      throw new IllegalArgumentException(
          "teacher top-k log-probs and indices must have the same shape, found "
              + teacherLogProbs.getShape()
              + " and "
              + teacherIndices.getShape());
    }
    int vocab = checkTargets(studentLogits, targets, mask);
    long[] t = teacherLogProbs.getShape().getShape();
    int k = (int) t[t.length - 1];
    if (teacherLogProbs.getShape().size() / k != studentLogits.getShape().size() / vocab
        || k > vocab) {
      throw new IllegalArgumentException(
          "expected teacher top-k [..., k <= "
              + vocab
              + "] for every student position, found "
              + teacherLogProbs.getShape()
              + " against student logits "
              + studentLogits.getShape());
    }
    NDArray student = studentLogits.reshape(-1, vocab);
    NDArray index = teacherIndices.reshape(-1, k).toType(DataType.INT64, false);
    NDArray teacherLogSoft =
        teacherLogProbs.reshape(-1, k).stopGradient().mul(invTemperature).logSoftmax(1);
    NDArray studentLogSoft = student.gather(index, 1).mul(invTemperature).logSoftmax(1);
    NDArray kl = teacherLogSoft.exp().mul(teacherLogSoft.sub(studentLogSoft)).sum(new int[] {1});
    return combine(student, kl, targets, mask);
  }

  private static int checkTargets(NDArray studentLogits, NDArray targets, NDArray mask) {
    long[] s = studentLogits.getShape().getShape();
    long positions = studentLogits.getShape().size() / s[s.length - 1];
    if (targets.getShape().size() != positions) {
      throw new IllegalArgumentException(
          "expected one target per position ("
              + positions
              + "), found targets of shape "
              + targets.getShape());
    }
    if (mask != null && mask.getShape().size() != positions) {
      throw new IllegalArgumentException(
          "expected one mask value per position ("
              + positions
              + "), found a mask of shape "
              + mask.getShape());
    }
    return (int) s[s.length - 1];
  }

  /** Reduces the per-position KL and the cross-entropy over the (kept) positions. */
  private Terms combine(NDArray student, NDArray klPerPosition, NDArray targets, NDArray mask) {
    NDArray index = targets.reshape(-1, 1).toType(DataType.INT64, false);
    NDArray nll = student.logSoftmax(1).gather(index, 1).reshape(-1).neg();
    NDArray kl;
    NDArray crossEntropy;
    if (mask == null) {
      kl = klPerPosition.mean();
      crossEntropy = nll.mean();
    } else {
      NDArray keep = mask.reshape(-1).toType(DataType.FLOAT32, false);
      NDArray count = keep.sum().maximum(one);
      kl = klPerPosition.mul(keep).sum().div(count);
      crossEntropy = nll.mul(keep).sum().div(count);
    }
    NDArray loss = kl.mul(softWeight).add(crossEntropy.mul(hardWeight));
    return new Terms(loss, kl, crossEntropy);
  }

  @Override
  public void close() {
    invTemperature.close();
    softWeight.close();
    hardWeight.close();
    one.close();
  }
}
