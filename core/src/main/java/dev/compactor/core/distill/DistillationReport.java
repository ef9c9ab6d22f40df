package dev.compactor.core.distill;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a distillation run did, for the job's metrics: steps taken (and from which step it resumed),
 * the loss at the start and end, a sampled loss curve, and the wall time spent.
 *
 * @param totalSteps steps the student has been trained for, including those before a resume
 * @param resumedFromStep the checkpoint step this run continued from (0 for a fresh run)
 * @param startLoss mean loss over the first steps of this run
 * @param endLoss mean loss over the last steps of this run
 * @param curve sampled (step, loss) points of this run
 * @param tokens training tokens processed by this run
 * @param seconds wall time of this run
 * @param checkpoints checkpoints written by this run
 */
public record DistillationReport(
    long totalSteps,
    long resumedFromStep,
    double startLoss,
    double endLoss,
    List<LossPoint> curve,
    long tokens,
    double seconds,
    int checkpoints) {

  /** The loss after one step. */
  public record LossPoint(long step, double loss) {}

  public DistillationReport {
    curve = List.copyOf(curve);
  }

  /** Flat metrics for a job's provenance record and the model card. */
  public Map<String, Double> metrics() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("distill.steps", (double) totalSteps);
    m.put("distill.resumed_from_step", (double) resumedFromStep);
    m.put("distill.start_loss", startLoss);
    m.put("distill.end_loss", endLoss);
    m.put("distill.tokens", (double) tokens);
    m.put("distill.seconds", seconds);
    return m;
  }
}
