package dev.compactor.core.distill;

import java.nio.file.Path;

/**
 * What a distillation run adds to the logit KD of {@link DistillationSpec}: a hidden-state loss,
 * and/or the teacher's top-k log-probabilities cached to disk in place of a teacher pass per step.
 * Either may be null (absent).
 *
 * @param hidden the hidden-state loss, or null
 * @param topK the cached teacher top-k, or null (a full teacher pass every step)
 */
public record DistillationDepth(Hidden hidden, TopK topK) {

  /** Plain logit KD. */
  public static final DistillationDepth NONE = new DistillationDepth(null, null);

  public DistillationDepth {
    if (hidden != null && topK != null) {
      throw new UnsupportedOperationException(
          "not supported yet: the hidden-state loss with a cached teacher top-k (the teacher's"
              + " hidden states are not cached, so every step would still run the teacher)");
    }
  }

  /**
   * @param kind MSE or 1 - cosine per position
   * @param weight beta, added to the KD loss as {@code beta * L_hidden}
   * @param teacherLayers the teacher layer each student layer is pulled towards (one per student
   *     layer); null: the layers the student was built from when known, else evenly spaced
   */
  public record Hidden(HiddenStateLoss.Kind kind, float weight, int[] teacherLayers) {
    public Hidden {
      if (!(weight > 0f) || Float.isInfinite(weight)) {
        throw new IllegalArgumentException("hidden-state weight must be > 0, found " + weight);
      }
      teacherLayers = teacherLayers == null ? null : teacherLayers.clone();
    }

    public Hidden withTeacherLayers(int[] layers) {
      return new Hidden(kind, weight, layers);
    }
  }

  /**
   * @param k log-probs kept per position
   * @param file the cache file; null: {@code teacher-topk.bin} in the work directory
   * @param teacherId what binds the cache to the teacher (e.g. {@link TeacherTopKCache#teacherId});
   *     null: computed from the teacher directory
   */
  public record TopK(int k, Path file, String teacherId) {
    public TopK {
      if (k < 1) {
        throw new IllegalArgumentException("teacher top-k must be >= 1, found " + k);
      }
    }
  }
}
