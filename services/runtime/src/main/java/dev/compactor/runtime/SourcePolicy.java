package dev.compactor.runtime;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Which sources a job may name as its model or calibration data: {@code file://} paths only under
 * the configured roots, {@code s3://} objects only in the configured buckets. Without it a job
 * could read any file the worker can ({@code /etc/passwd} as "calibration") or publish a model from
 * another user's cache.
 *
 * <p>Paths are compared canonically: a path that exists is resolved with {@link Path#toRealPath}
 * (symlinks and {@code ..} followed), so a link inside a root that points outside is refused. A
 * path that does not exist (yet, or not on this machine: the orchestrator may not see the workers'
 * disks) is compared after {@link Path#normalize}; the stage that reads it checks again once it
 * exists.
 */
public final class SourcePolicy {

  /** Every local file and every bucket: for the CLI running a stage on the caller's own files. */
  public static final SourcePolicy UNRESTRICTED = new SourcePolicy(null, null);

  private final List<Path> fileRoots; // null = any
  private final Set<String> buckets; // null = any

  private SourcePolicy(List<Path> fileRoots, Set<String> buckets) {
    this.fileRoots = fileRoots;
    this.buckets = buckets;
  }

  /** Allows files under {@code fileRoots} and objects in {@code buckets}; both may be empty. */
  public static SourcePolicy of(List<Path> fileRoots, Set<String> buckets) {
    List<Path> roots = new ArrayList<>();
    for (Path r : fileRoots) {
      roots.add(canonical(r));
    }
    return new SourcePolicy(List.copyOf(roots), Set.copyOf(buckets));
  }

  /**
   * Parses the two settings: {@code roots} a path list separated by {@link File#pathSeparator} or
   * ','; {@code buckets} a comma-separated bucket list.
   */
  public static SourcePolicy parse(String roots, String buckets) {
    List<Path> paths = new ArrayList<>();
    for (String s : split(roots, "[,\\" + File.pathSeparator + "]")) {
      paths.add(Path.of(s));
    }
    return of(paths, new LinkedHashSet<>(split(buckets, ",")));
  }

  /** The settings of a stage worker: its roots, and its buckets (default: artifact + data). */
  public static SourcePolicy of(StageConfig config) {
    String buckets = config.get(StageConfig.SOURCE_BUCKETS);
    if (buckets.isBlank()) {
      buckets = config.get(StageConfig.S3_BUCKET) + "," + StageConfig.DEFAULT_DATA_BUCKET;
    }
    return parse(config.get(StageConfig.SOURCE_FILE_ROOTS), buckets);
  }

  /**
   * Why {@code uri} may not be read, or empty when it may. Schemes other than {@code file:} and
   * {@code s3://} are not judged here (the reader refuses them).
   */
  public Optional<String> problem(String uri) {
    if (uri == null) {
      return Optional.empty();
    }
    if (uri.startsWith("file:")) {
      if (fileRoots == null) {
        return Optional.empty();
      }
      Path p;
      try {
        p = canonical(Path.of(URI.create(uri)));
      } catch (IllegalArgumentException e) {
        return Optional.of("source " + uri + ": not a valid file URI (" + e.getMessage() + ")");
      }
      for (Path root : fileRoots) {
        if (p.startsWith(root)) {
          return Optional.empty();
        }
      }
      return Optional.of(
          "source "
              + uri
              + " refused: "
              + (p.toString().equals(Path.of(URI.create(uri)).toString())
                  ? "it is"
                  : "it resolves to " + p + ", which is")
              + " outside the allowed file roots "
              + (fileRoots.isEmpty() ? "(none configured)" : fileRoots)
              + "; set COMPACTOR_SOURCE_FILE_ROOTS or upload it to an allowed bucket");
    }
    if (uri.startsWith("s3://")) {
      if (buckets == null) {
        return Optional.empty();
      }
      String bucket;
      try {
        bucket = S3Uri.parse(uri).bucket();
      } catch (IllegalArgumentException e) {
        return Optional.of("source " + uri + ": " + e.getMessage());
      }
      if (buckets.contains(bucket)) {
        return Optional.empty();
      }
      return Optional.of(
          "source "
              + uri
              + " refused: bucket '"
              + bucket
              + "' is not an allowed source bucket "
              + new java.util.TreeSet<>(buckets)
              + "; set COMPACTOR_SOURCE_BUCKETS");
    }
    return Optional.empty();
  }

  /**
   * Throws when {@code uri} may not be read.
   *
   * @throws SourceRefusedException with the reason
   */
  public void check(String uri) {
    Optional<String> p = problem(uri);
    if (p.isPresent()) {
      throw new SourceRefusedException(p.get());
    }
  }

  /** A source outside the policy: bad input, never retried. */
  public static final class SourceRefusedException extends IllegalArgumentException {
    public SourceRefusedException(String message) {
      super(message);
    }
  }

  private static Path canonical(Path p) {
    Path abs = p.toAbsolutePath().normalize();
    if (Files.exists(abs)) {
      try {
        return abs.toRealPath();
      } catch (IOException e) {
        return abs;
      }
    }
    // resolve the longest existing ancestor, so a link above a not-yet-existing leaf is followed
    Path existing = abs;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null) {
      return abs;
    }
    try {
      return existing.toRealPath().resolve(existing.relativize(abs)).normalize();
    } catch (IOException e) {
      return abs;
    }
  }

  private static List<String> split(String s, String regex) {
    if (s == null || s.isBlank()) {
      return List.of();
    }
    return Arrays.stream(s.split(regex)).map(String::trim).filter(t -> !t.isEmpty()).toList();
  }
}
