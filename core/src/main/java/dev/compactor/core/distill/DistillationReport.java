package dev.compactor.core.distill;

import java.util.List;

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
}
