package dev.compactor.runtime;

import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.Objects;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-job scratch directories under {@code COMPACTOR_WORK_DIR}: {@code
 * <root>/<stage>/<job>-<step>-<uuid>/}, each with a lock file {@code <that name>.lock} beside it
 * that the worker running the job holds (an OS file lock) until it has deleted the directory. A
 * killed worker cannot delete its directory, but the OS releases its lock, so the next worker to
 * start on that host ({@link #deleteStale}) can tell a dead worker's directory (lock free) from a
 * live one's (lock held, by any process) and delete only the former.
 *
 * <p>The lock file is created and locked before the directory exists, so a directory whose lock
 * file is missing was made by a worker from before these locks; it is left alone and reported,
 * since its owner may still be running. Only names of this layout under known stage directories are
 * ever touched, so a work dir shared with other programs (say {@code /tmp}) loses nothing else.
 */
final class ScratchDirs {
  private static final Logger log = LoggerFactory.getLogger(ScratchDirs.class);

  static final String LOCK_SUFFIX = ".lock";
  static final Pattern JOB_DIR =
      Pattern.compile(".+-\\d+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

  private final Path root;

  ScratchDirs(Path root) {
    this.root = root;
  }

  /** What {@link #deleteStale} did. */
  record Cleanup(int deleted, long bytes, int inUse, int withoutLock) {}

  /**
   * Creates and locks a fresh directory {@code <root>/<stage>/<prefix>-<uuid>}.
   *
   * @param prefix {@code <job>-<step>}, only letters, digits, '.', '_' and '-'
   */
  Lease create(String stage, String prefix) throws IOException {
    Path parent = Files.createDirectories(root.resolve(stage));
    for (int attempt = 0; ; attempt++) {
      String name = prefix + "-" + UUID.randomUUID();
      if (!JOB_DIR.matcher(name).matches()) {
        throw new IllegalArgumentException(
            "scratch dir: expected <job>-<step>, found '" + prefix + "'");
      }
      Path lockFile = parent.resolve(name + LOCK_SUFFIX);
      FileChannel channel =
          FileChannel.open(lockFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = channel.tryLock();
      } catch (OverlappingFileLockException cleanerInThisJvm) {
        lock = null;
      }
      // A cleaner may lock and unlink a new lock file before we lock it: then take another name.
      // Names are unique and cleaners never create files, so an existing file is still ours.
      if (lock == null || !Files.exists(lockFile)) {
        channel.close();
        if (attempt >= 3) {
          throw new IOException("scratch dir under " + parent + ": could not lock a new name");
        }
        continue;
      }
      try {
        return new Lease(Files.createDirectory(parent.resolve(name)), lockFile, channel);
      } catch (IOException | RuntimeException e) {
        channel.close();
        Files.deleteIfExists(lockFile);
        throw e;
      }
    }
  }

  /** Deletes every job directory under the root whose lock no live process holds. */
  Cleanup deleteStale() {
    int deleted = 0;
    int inUse = 0;
    int withoutLock = 0;
    long bytes = 0;
    for (String stage : Topics.STAGES) {
      Path dir = root.resolve(stage);
      if (!Files.isDirectory(dir)) {
        continue;
      }
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
        for (Path p : entries) {
          String name = p.getFileName().toString();
          if (name.endsWith(LOCK_SUFFIX)) {
            String job = name.substring(0, name.length() - LOCK_SUFFIX.length());
            if (!JOB_DIR.matcher(job).matches()) {
              continue;
            }
            long freed = deleteIfUnlocked(p, dir.resolve(job));
            if (freed < 0) {
              inUse++;
            } else {
              deleted++;
              bytes += freed;
            }
          } else if (JOB_DIR.matcher(name).matches()
              && Files.isDirectory(p)
              && !Files.exists(dir.resolve(name + LOCK_SUFFIX))) {
            withoutLock++;
            log.warn(
                "scratch dir {} has no lock file (made before scratch dirs were locked): left in"
                    + " place; delete it by hand when no worker of that version runs",
                p);
          }
        }
      } catch (IOException e) {
        log.warn("could not scan scratch dirs in {}: {}", dir, e.toString());
      }
    }
    Cleanup c = new Cleanup(deleted, bytes, inUse, withoutLock);
    if (deleted > 0 || withoutLock > 0) {
      log.info(
          "scratch dirs under {}: deleted {} left by dead workers ({} bytes), {} in use, {}"
              + " without lock",
          root,
          deleted,
          bytes,
          inUse,
          withoutLock);
    }
    return c;
  }

  /** Bytes freed, or -1 when a live process holds the lock. */
  private static long deleteIfUnlocked(Path lockFile, Path jobDir) {
    try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.WRITE)) {
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (OverlappingFileLockException sameJvm) {
        return -1;
      }
      if (lock == null) {
        return -1;
      }
      long bytes = deleteTree(jobDir);
      Files.deleteIfExists(lockFile);
      return bytes;
    } catch (NoSuchFileException gone) {
      return 0;
    } catch (IOException e) {
      log.warn("could not check scratch dir {}: {}", jobDir, e.toString());
      return -1;
    }
  }

  /** Deletes a tree, returning the bytes of the files it held. */
  static long deleteTree(Path dir) {
    if (!Files.exists(dir)) {
      return 0;
    }
    long[] bytes = {0};
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.sorted(Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  if (Files.isRegularFile(p)) {
                    bytes[0] += Files.size(p);
                  }
                  Files.deleteIfExists(p);
                } catch (IOException e) {
                  log.warn("could not delete {}: {}", p, e.toString());
                }
              });
    } catch (IOException e) {
      log.warn("could not clean {}: {}", dir, e.toString());
    }
    return bytes[0];
  }

  /** One job's locked scratch directory; closing deletes it, then releases the lock. */
  static final class Lease implements AutoCloseable {
    private final Path dir;
    private final Path lockFile;
    private final FileChannel channel;

    private Lease(Path dir, Path lockFile, FileChannel channel) {
      this.dir = dir;
      this.lockFile = lockFile;
      this.channel = Objects.requireNonNull(channel);
    }

    Path dir() {
      return dir;
    }

    @Override
    public void close() {
      deleteTree(dir);
      try {
        Files.deleteIfExists(lockFile);
        channel.close();
      } catch (IOException e) {
        log.warn("could not release scratch lock {}: {}", lockFile, e.toString());
      }
    }
  }
}
