package dev.compactor.core.metrics;

/**
 * Receives progress of long work (evaluation windows, training steps) so a CLI or a stage worker
 * can show it; implementations must be cheap, they are called from the working thread.
 */
@FunctionalInterface
public interface ProgressListener {

  /** A listener that ignores everything. */
  ProgressListener NONE = (phase, done, total) -> {};

  /** {@code done} of {@code total} units of {@code phase} are finished. */
  void onProgress(String phase, long done, long total);
}
