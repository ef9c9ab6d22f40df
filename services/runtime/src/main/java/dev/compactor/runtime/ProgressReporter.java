package dev.compactor.runtime;

/**
 * Lets a running stage say how far it is. The worker logs it (throttled) with the job's coordinates
 * and shows it in its health snapshot, so an operator can tell a slow job from a stuck one.
 */
@FunctionalInterface
public interface ProgressReporter {
  /**
   * @param fraction done so far, 0 to 1
   * @param message what is happening, e.g. "layer 12/32"
   */
  void report(double fraction, String message);
}
