package dev.compactor.runtime;

/**
 * The computation of one pipeline stage (pruning, quantization, ...), as a stage service provides
 * it. Everything around it — consuming the request, downloading and verifying the input, uploading
 * the output, publishing {@code StageCompleted}/{@code StageFailed}, committing, retries,
 * idempotency — is done by {@link StageWorker}, written once for all stages.
 *
 * <p>An implementation reads {@link StageContext#inputDir()}, writes {@link
 * StageContext#outputDir()} and returns metrics. It may run for hours; it should call {@link
 * StageContext#checkCancelled()} between units of work (e.g. per layer) so a job whose partition
 * moved to another worker stops promptly. Throwing fails the step with the root cause's message as
 * the reason, so messages should say what was expected and what was found.
 */
@FunctionalInterface
public interface Stage {
  /** Runs one step. */
  StageResult run(StageContext ctx) throws Exception;

  /**
   * Refuses a device ({@code cpu}, {@code gpu}, {@code cuda:<n>}) this stage cannot compute on
   * here; called once before the service starts ({@link Devices#resolve}). The default accepts only
   * the CPU: a stage with a GPU path overrides it and checks its engine really has that device.
   *
   * @throws RuntimeException saying what is missing
   */
  default void checkDevice(String device) {
    Devices.requireCpu(device, "this stage's computation");
  }
}
