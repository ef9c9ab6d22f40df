package dev.compactor.services.distillation;

import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Keeps a distillation run's checkpoints under one S3 prefix (per job and step), so that a worker
 * that takes over a job whose first worker died resumes from the last checkpoint. Each checkpoint
 * is uploaded to {@code <prefix>step-<n>/}; only then does {@code <prefix>latest} name it, so a
 * half-uploaded checkpoint is never resumed from. Older checkpoints are deleted.
 */
public final class S3CheckpointSink implements CheckpointSink {
  private static final String LATEST = "latest";

  private final BlobStore blobs;
  private final S3Uri prefix;
  private final Path localRoot;
  private final Runnable checkCancelled;

  /**
   * @param prefix an {@code s3://bucket/.../} prefix owned by one run
   * @param localRoot where {@link #latest()} downloads a checkpoint
   * @param checkCancelled throws when the run was taken away from this worker, so that a run the
   *     worker abandoned stops at its next checkpoint instead of writing beside its successor
   */
  public S3CheckpointSink(BlobStore blobs, S3Uri prefix, Path localRoot, Runnable checkCancelled) {
    if (!prefix.isPrefix()) {
      throw new IllegalArgumentException("checkpoint prefix must end with '/', found " + prefix);
    }
    this.blobs = blobs;
    this.prefix = prefix;
    this.localRoot = localRoot;
    this.checkCancelled = checkCancelled;
  }

  @Override
  public void save(long step, Path directory) throws IOException {
    checkCancelled.run();
    S3Uri target = prefix.resolve("step-" + step + "/");
    List<Path> files;
    try (Stream<Path> s = Files.list(directory)) {
      files = s.toList();
    }
    for (Path f : files) {
      if (!Files.isRegularFile(f)) {
        throw new IOException("a checkpoint holds only plain files, found " + f);
      }
      blobs.putFile(target.resolve(f.getFileName().toString()), f);
    }
    Optional<Long> previous = latestStep();
    blobs.putBytes(
        prefix.resolve(LATEST), Long.toString(step).getBytes(StandardCharsets.UTF_8), "text/plain");
    if (previous.isPresent() && previous.get() != step) {
      for (BlobStore.BlobInfo old : blobs.list(prefix.resolve("step-" + previous.get() + "/"))) {
        blobs.delete(old.uri());
      }
    }
  }

  @Override
  public Optional<Checkpoint> latest() throws IOException {
    Optional<Long> step = latestStep();
    if (step.isEmpty()) {
      return Optional.empty();
    }
    S3Uri source = prefix.resolve("step-" + step.get() + "/");
    Path dir = Files.createDirectories(localRoot.resolve("resume-step-" + step.get()));
    for (BlobStore.BlobInfo blob : blobs.list(source)) {
      String name = blob.uri().key().substring(source.key().length());
      if (name.contains("/") || name.isEmpty()) {
        throw new IOException("unexpected object in checkpoint " + source + ": " + name);
      }
      blobs.getFile(blob.uri(), dir.resolve(name));
    }
    return Optional.of(new Checkpoint(step.get(), dir));
  }

  private Optional<Long> latestStep() {
    try {
      String text =
          new String(blobs.getBytes(prefix.resolve(LATEST), 64), StandardCharsets.UTF_8).trim();
      return Optional.of(Long.parseLong(text));
    } catch (BlobStore.BlobNotFoundException e) {
      return Optional.empty();
    }
  }
}
