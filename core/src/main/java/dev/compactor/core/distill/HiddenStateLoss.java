package dev.compactor.core.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Hidden-state distillation: the student's residual stream after layer {@code j} is pulled towards
 * the teacher's after layer {@code map[j]}, for each selected pair. Per pair and position the
 * distance is the mean squared error over the hidden axis ({@link Kind#MSE}) or {@code 1 - cos(s,
 * t)} with {@code cos = s.t / sqrt((s.s)(t.t) + 1e-12)} ({@link Kind#COSINE}); positions are
 * averaged (over the positions a mask keeps, when there is one), pairs are averaged, and the result
 * is scaled by the weight beta:
 *
 * <pre>
 *   L_hidden = beta * (1/P) * sum_pairs  sum_pos m_pos * d(W s_pos, t_pos) / sum_pos m_pos
 * </pre>
 *
 * <p>When the student is narrower or wider than the teacher, {@code W} is a learned linear map
 * {@code [teacherWidth, studentWidth]} per pair, trained with the student (its arrays are returned
 * by {@link #projections()} for the optimizer and checkpoints) but never saved into the student;
 * with equal widths there is no projection ({@code W = I}). The teacher side is a constant.
 */
public final class HiddenStateLoss implements AutoCloseable {

  /** The per-position distance. */
  public enum Kind {
    MSE,
    COSINE;

    /** {@code mse} or {@code cosine}, as the CLI and recipes spell it. */
    public static Kind parse(String s) {
      return switch (s.toLowerCase(Locale.ROOT)) {
        case "mse" -> MSE;
        case "cosine", "cos" -> COSINE;
        default ->
            throw new IllegalArgumentException("hidden loss must be mse or cosine, found " + s);
      };
    }
  }

  /** Name prefix of the projection arrays among the trained parameters. */
  public static final String PROJECTION_PREFIX = "hidden_projection.";

  private final Kind kind;
  private final int[] studentLayers;
  private final int[] teacherLayers;
  private final NDArray weight;
  private final NDArray invPairs;
  private final NDArray eps;
  private final NDArray one;
  private final Map<String, NDArray> projections = new LinkedHashMap<>();

  /**
   * @param constants owns the constants and projections; keep it open as long as this loss is used
   * @param studentLayers student layer indices, one per pair
   * @param teacherLayers the teacher layer each is pulled towards
   * @param seed seed of the projections' initialisation (N(0, 1/studentWidth))
   */
  public HiddenStateLoss(
      NDManager constants,
      Kind kind,
      float weight,
      int[] studentLayers,
      int[] teacherLayers,
      long studentWidth,
      long teacherWidth,
      long seed) {
    if (!(weight > 0f) || Float.isInfinite(weight)) {
      throw new IllegalArgumentException("hidden-state weight must be > 0, found " + weight);
    }
    if (studentLayers.length == 0 || studentLayers.length != teacherLayers.length) {
      throw new IllegalArgumentException(
          "hidden-state pairs: expected as many student as teacher layers (at least one), found "
              + Arrays.toString(studentLayers)
              + " and "
              + Arrays.toString(teacherLayers));
    }
    this.kind = kind;
    this.studentLayers = studentLayers.clone();
    this.teacherLayers = teacherLayers.clone();
    this.weight = constants.create(weight);
    this.invPairs = constants.create(1f / studentLayers.length);
    this.eps = constants.create(1e-12f);
    this.one = constants.create(1f);
    if (studentWidth != teacherWidth) {
      Random random = new Random(seed);
      double std = 1.0 / Math.sqrt(studentWidth);
      for (int j : studentLayers) {
        float[] w = new float[Math.toIntExact(studentWidth * teacherWidth)];
        for (int i = 0; i < w.length; i++) {
          w[i] = (float) (random.nextGaussian() * std);
        }
        projections.put(
            PROJECTION_PREFIX + j, constants.create(w, new Shape(teacherWidth, studentWidth)));
      }
    }
  }

  /**
   * The teacher layer for each of {@code studentCount} student layers, evenly spaced so the last
   * student layer meets the teacher's last: {@code round((j + 1) * T / S) - 1}.
   */
  public static int[] evenlySpaced(int studentCount, int teacherCount) {
    int[] map = new int[studentCount];
    for (int j = 0; j < studentCount; j++) {
      map[j] = (int) Math.round((j + 1) * (double) teacherCount / studentCount) - 1;
    }
    return map;
  }

  /** The learned projections by name (empty when the widths match). */
  public Map<String, NDArray> projections() {
    return projections;
  }

  public int[] studentLayers() {
    return studentLayers.clone();
  }

  public int[] teacherLayers() {
    return teacherLayers.clone();
  }

  /**
   * The loss over the per-layer outputs {@code student} and {@code teacher} ({@code [batch, seq,
   * width]} each, in layer order); {@code mask} ({@code [batch, seq]} of 0/1, may be null) selects
   * the positions that count.
   */
  public NDArray compute(List<NDArray> student, List<NDArray> teacher, NDArray mask) {
    NDArray total = null;
    for (int p = 0; p < studentLayers.length; p++) {
      int j = studentLayers[p];
      int t = teacherLayers[p];
      if (j < 0 || j >= student.size() || t < 0 || t >= teacher.size()) {
        throw new IllegalArgumentException(
            "hidden-state pair "
                + j
                + " -> "
                + t
                + " is outside the student's "
                + student.size()
                + " or the teacher's "
                + teacher.size()
                + " layers");
      }
      NDArray s = student.get(j);
      NDArray proj = projections.get(PROJECTION_PREFIX + j);
      if (proj != null) {
        s = Linear.linear(s, proj).head();
      }
      NDArray target = teacher.get(t).stopGradient();
      if (!s.getShape().equals(target.getShape())) {
        throw new IllegalArgumentException(
            "hidden states of student layer "
                + j
                + " "
                + s.getShape()
                + " and teacher layer "
                + t
                + " "
                + target.getShape()
                + " differ");
      }
      int last = s.getShape().dimension() - 1;
      NDArray perPosition =
          switch (kind) {
            case MSE -> s.sub(target).square().mean(new int[] {last});
            case COSINE -> {
              NDArray dot = s.mul(target).sum(new int[] {last});
              NDArray norms =
                  s.square()
                      .sum(new int[] {last})
                      .mul(target.square().sum(new int[] {last}))
                      .add(eps)
                      .sqrt();
              yield dot.div(norms).neg().add(one);
            }
          };
      NDArray pair =
          mask == null
              ? perPosition.mean()
              : perPosition.mul(mask).sum().div(mask.sum().maximum(eps));
      total = total == null ? pair : total.add(pair);
    }
    return total.mul(invPairs).mul(weight);
  }

  @Override
  public void close() {
    weight.close();
    invPairs.close();
    eps.close();
    one.close();
    projections.values().forEach(NDArray::close);
  }
}
