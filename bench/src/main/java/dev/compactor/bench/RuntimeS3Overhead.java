package dev.compactor.bench;

import dev.compactor.events.ArtifactRef;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.ArtifactStore;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The S3 work the stage runtime does around every job, timed on its own for a small artifact: the
 * same calls, in the same order, as {@code StageWorker} makes them — completion-marker lookup (a
 * GET that misses), input download with sha256 verification, output upload (hashing, PUT of each
 * file, manifest existence check and PUT), and the completion-marker PUT.
 */
final class RuntimeS3Overhead {
  static final String MARKER_GET = "completion-marker lookup (GET, miss)";
  static final String DOWNLOAD = "input download + sha256 verify";
  static final String UPLOAD = "output upload (hash, stat, PUT files + manifest)";
  static final String MARKER_PUT = "completion-marker PUT";
  static final String TOTAL = "sum per job";

  private static final int MAX_MARKER_BYTES = 1024 * 1024;

  /** Makes a fresh input artifact in S3 (not timed). */
  @FunctionalInterface
  interface InputMaker {
    ArtifactRef make(String name) throws Exception;
  }

  private RuntimeS3Overhead() {}

  /** Times {@code reps} rounds of the runtime's per-job S3 calls; milliseconds per call kind. */
  static Map<String, LatencyStats> measure(
      BlobStore blobs, ArtifactStore artifacts, Path dir, int reps, InputMaker inputs)
      throws Exception {
    Map<String, List<Double>> samples = new LinkedHashMap<>();
    for (String k : List.of(MARKER_GET, DOWNLOAD, UPLOAD, MARKER_PUT, TOTAL)) {
      samples.put(k, new ArrayList<>());
    }
    String bucket = artifacts.bucket();
    for (int r = 0; r < reps; r++) {
      String name = "overhead-" + System.nanoTime() + "-" + r;
      ArtifactRef in = inputs.make(name);
      S3Uri marker = new S3Uri(bucket, "markers/bench/" + name + "/step-1/attempt-1.json");
      Path jobDir = Files.createDirectories(dir.resolve(name));

      long t0 = System.nanoTime();
      try {
        blobs.getBytes(marker, MAX_MARKER_BYTES);
        throw new IllegalStateException(marker + ": expected no marker yet, found one");
      } catch (BlobStore.BlobNotFoundException expected) {
        // the normal case: a first delivery has no marker
      }
      long t1 = System.nanoTime();
      ArtifactManifest manifest = artifacts.download(in, jobDir.resolve("input"));
      long t2 = System.nanoTime();
      Path out = Files.createDirectories(jobDir.resolve("output"));
      for (ArtifactManifest.FileEntry f : manifest.files()) {
        Files.copy(jobDir.resolve("input").resolve(f.path()), out.resolve(f.path()));
      }
      long t3 = System.nanoTime();
      artifacts.upload(
          out,
          "bench-bytes",
          new ArtifactManifest.Provenance("prune", name, in.getSha256().toString(), Map.of()));
      long t4 = System.nanoTime();
      blobs.putBytes(marker, markerBody(name), "application/json");
      long t5 = System.nanoTime();

      samples.get(MARKER_GET).add((t1 - t0) / 1e6);
      samples.get(DOWNLOAD).add((t2 - t1) / 1e6);
      samples.get(UPLOAD).add((t4 - t3) / 1e6);
      samples.get(MARKER_PUT).add((t5 - t4) / 1e6);
      samples.get(TOTAL).add(((t5 - t0) - (t3 - t2)) / 1e6);
      deleteTree(jobDir);
    }
    Map<String, LatencyStats> out = new LinkedHashMap<>();
    samples.forEach((k, v) -> out.put(k, LatencyStats.of(v)));
    return out;
  }

  /** About the size of a real marker: coordinates plus the serialized StageCompleted. */
  private static byte[] markerBody(String name) {
    String json =
        "{\"topic\":\"compactor.stage.prune.requested\",\"partition\":0,\"offset\":0,"
            + "\"completed\":true,\"worker\":\"bench\",\"job\":\""
            + name
            + "\",\"records\":[{\"topic\":\"compactor.stage.completed\",\"value\":\""
            + "x".repeat(400)
            + "\"}]}";
    return json.getBytes(StandardCharsets.UTF_8);
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
