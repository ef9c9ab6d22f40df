package dev.compactor.core.distill;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Keeps distillation checkpoints under a local directory as {@code step-<n>/}, each written to a
 * temporary sibling first and renamed into place, so a worker killed mid-write never leaves a half
 * checkpoint that would be resumed from. Only the newest {@code keep} checkpoints are kept.
 */
public final class LocalCheckpointSink implements CheckpointSink {

  private static final Pattern STEP_DIR = Pattern.compile("step-(\\d+)");

  private final Path root;
  private final int keep;

  /** Checkpoints under {@code root}, keeping the newest {@code keep} (at least 1). */
  public LocalCheckpointSink(Path root, int keep) throws IOException {
    if (keep < 1) {
      throw new IllegalArgumentException("must keep at least one checkpoint, found " + keep);
    }
    this.root = Files.createDirectories(root);
    this.keep = keep;
  }

  @Override
  public void save(long step, Path directory) throws IOException {
    Path tmp = Files.createTempDirectory(root, ".incoming-");
    try (Stream<Path> files = Files.list(directory)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        if (!Files.isRegularFile(f)) {
          throw new IOException("a checkpoint holds only plain files, found " + f);
        }
        Files.copy(f, tmp.resolve(f.getFileName()));
      }
    }
    Path target = root.resolve(String.format("step-%012d", step));
    if (Files.exists(target)) {
      deleteTree(target);
    }
    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
    List<Path> all = stepDirs();
    for (int i = 0; i < all.size() - keep; i++) {
      deleteTree(all.get(i));
    }
  }

  @Override
  public Optional<Checkpoint> latest() throws IOException {
    List<Path> all = stepDirs();
    if (all.isEmpty()) {
      return Optional.empty();
    }
    Path last = all.get(all.size() - 1);
    return Optional.of(new Checkpoint(step(last), last));
  }

  private List<Path> stepDirs() throws IOException {
    List<Path> dirs = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
      for (Path p : ds) {
        if (Files.isDirectory(p) && STEP_DIR.matcher(p.getFileName().toString()).matches()) {
          dirs.add(p);
        }
      }
    }
    dirs.sort(Comparator.comparingLong(LocalCheckpointSink::step));
    return dirs;
  }

  private static long step(Path dir) {
    Matcher m = STEP_DIR.matcher(dir.getFileName().toString());
    if (!m.matches()) {
      throw new IllegalArgumentException("not a checkpoint directory: " + dir);
    }
    return Long.parseLong(m.group(1));
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.delete(p);
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }
}
