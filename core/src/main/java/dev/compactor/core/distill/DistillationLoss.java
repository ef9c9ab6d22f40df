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
    long[] s = studentLogits.getShape().getShape();
    if (!studentLogits.getShape().equals(teacherLogits.getShape())) {
      throw new IllegalArgumentException(
          "student and teacher logits must have the same shape, found "
              + studentLogits.getShape()
              + " and "
              + teacherLogits.getShape());
    }
    long positions = studentLogits.getShape().size() / s[s.length - 1];
    if (targets.getShape().size() != positions) {
      throw new IllegalArgumentException(
          "expected one target per position ("
              + positions
              + "), found targets of shape "
              + targets.getShape());
    }
    int vocab = (int) s[s.length - 1];
    NDArray student = studentLogits.reshape(-1, vocab);
    NDArray teacher = teacherLogits.reshape(-1, vocab).stopGradient();

    NDArray studentLogSoft = student.mul(invTemperature).logSoftmax(1);
    NDArray teacherLogSoft = teacher.mul(invTemperature).logSoftmax(1);
    NDArray kl =
        teacherLogSoft.exp().mul(teacherLogSoft.sub(studentLogSoft)).sum(new int[] {1}).mean();

    NDArray index = targets.reshape(-1, 1).toType(DataType.INT64, false);
    NDArray crossEntropy = student.logSoftmax(1).gather(index, 1).mean().neg();

    NDArray loss = kl.mul(softWeight).add(crossEntropy.mul(hardWeight));
    return new Terms(loss, kl, crossEntropy);
  }

  @Override
  public void close() {
    invTemperature.close();
    softWeight.close();
    hardWeight.close();
  }
}
