package dev.compactor.core.distill;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Where a distillation run keeps its periodic checkpoints so that a restarted worker resumes
 * instead of starting over. The local implementation is {@link LocalCheckpointSink}; the
 * distillation service maps the same calls onto object storage.
 */
public interface CheckpointSink {

  /** A complete checkpoint: the training step it was taken after and a local directory. */
  record Checkpoint(long step, Path directory) {}

  /**
   * Stores the checkpoint taken after {@code step}. {@code directory} holds the complete checkpoint
   * and belongs to the caller again after the call; an implementation copies what it keeps. A
   * checkpoint must become visible to {@link #latest()} only once it is whole.
   */
  void save(long step, Path directory) throws IOException;

  /**
   * The most recent whole checkpoint as a local directory (downloaded first if it lives elsewhere),
   * or empty when the run has none yet.
   */
  Optional<Checkpoint> latest() throws IOException;
}
