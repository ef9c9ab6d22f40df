package dev.compactor.bench;

import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.ArtifactStore;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.Sha256;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Part (b) of {@link PipelineHopBench}: how fast model bytes move through the S3 server, next to
 * how fast this machine reads and hashes the same file locally, measured in the same run so the
 * ratio holds on a busy machine.
 *
 * <p>Each round times, on one file of random bytes: the reference (plain file read + SHA-256 in 1
 * MiB chunks), a raw {@link BlobStore#putFile} and {@link BlobStore#getFile}, and the runtime's
 * {@link ArtifactStore#upload} (hash, PUT, manifest) and {@link ArtifactStore#download} (GET with
 * SHA-256 verification). Every downloaded copy is checked against the original's hash outside the
 * timed part. Objects and copies are deleted after each round, so disk use stays at about four
 * times the blob size.
 */
final class BlobRoundTripBench {
  static final String REFERENCE = "reference: local file read + sha256";
  static final String RAW_PUT = "BlobStore.putFile (raw PUT)";
  static final String RAW_GET = "BlobStore.getFile (raw GET to file)";
  static final String ARTIFACT_UP = "ArtifactStore.upload (sha256 + PUT + manifest)";
  static final String ARTIFACT_DOWN = "ArtifactStore.download (GET + sha256 verify)";
  static final String RAW_ROUND_TRIP = "raw round trip (put + get)";
  static final String ARTIFACT_ROUND_TRIP = "artifact round trip (upload + download)";

  private static final int CHUNK = 1 << 20;

  /**
   * Median MiB/s of each operation over the rounds, in table order, and its ratio to the
   * reference's median (above 1 = faster than the local read + hash).
   */
  record Result(long bytes, int rounds, Map<String, Double> mibPerSecond) {
    double ratio(String op) {
      return mibPerSecond.get(op) / mibPerSecond.get(REFERENCE);
    }
  }

  private BlobRoundTripBench() {}

  /** Runs part (b) against {@code stack}'s S3 server, with scratch files under {@code dir}. */
  static Result run(LocalStack stack, Path dir, BenchOptions options) throws Exception {
    BlobStore blobs =
        BlobStore.create(HopLatencyBench.stageConfig(stack, dir, options.pollTimeoutMs()));
    ArtifactStore artifacts = new ArtifactStore(blobs, LocalStack.ARTIFACTS_BUCKET);
    long bytes = (long) options.blobMib() << 20;
    Path src = Files.createDirectories(dir.resolve("blob-src"));
    Path file = src.resolve("model.safetensors");
    writeRandom(file, bytes);
    String expected = Sha256.of(file);

    Map<String, List<Double>> secs = new LinkedHashMap<>();
    for (String op : List.of(REFERENCE, RAW_PUT, RAW_GET, ARTIFACT_UP, ARTIFACT_DOWN)) {
      secs.put(op, new ArrayList<>());
    }
    try {
      for (int r = 0; r < options.blobRounds(); r++) {
        long t0 = System.nanoTime();
        String refHash = readAndHash(file);
        long t1 = System.nanoTime();
        check(expected, refHash, "reference read");

        S3Uri raw = new S3Uri(LocalStack.ARTIFACTS_BUCKET, "bench/raw-" + System.nanoTime());
        Path rawCopy = dir.resolve("raw-get.bin");
        long t2 = System.nanoTime();
        blobs.putFile(raw, file);
        long t3 = System.nanoTime();
        blobs.getFile(raw, rawCopy);
        long t4 = System.nanoTime();
        check(expected, Sha256.of(rawCopy), "raw GET copy");
        Files.delete(rawCopy);
        blobs.delete(raw);

        Path target = dir.resolve("artifact-get");
        long t5 = System.nanoTime();
        var ref =
            artifacts.upload(
                src,
                "bench-bytes",
                new ArtifactManifest.Provenance("bench", "round " + t5, null, Map.of()));
        long t6 = System.nanoTime();
        artifacts.download(ref, target);
        long t7 = System.nanoTime();
        check(expected, Sha256.of(target.resolve(file.getFileName())), "artifact download");
        RuntimeS3Overhead.deleteTree(target);
        S3Uri prefix = S3Uri.parse(ref.getUri().toString());
        for (BlobStore.BlobInfo b : blobs.list(prefix)) {
          blobs.delete(b.uri());
        }

        secs.get(REFERENCE).add((t1 - t0) / 1e9);
        secs.get(RAW_PUT).add((t3 - t2) / 1e9);
        secs.get(RAW_GET).add((t4 - t3) / 1e9);
        secs.get(ARTIFACT_UP).add((t6 - t5) / 1e9);
        secs.get(ARTIFACT_DOWN).add((t7 - t6) / 1e9);
      }
    } finally {
      RuntimeS3Overhead.deleteTree(src);
      blobs.close();
    }
    double mib = bytes / (double) (1 << 20);
    Map<String, Double> rates = new LinkedHashMap<>();
    secs.forEach((op, s) -> rates.put(op, mib / LatencyStats.median(s)));
    rates.put(RAW_ROUND_TRIP, mib / median(secs.get(RAW_PUT), secs.get(RAW_GET)));
    rates.put(ARTIFACT_ROUND_TRIP, mib / median(secs.get(ARTIFACT_UP), secs.get(ARTIFACT_DOWN)));
    return new Result(bytes, options.blobRounds(), rates);
  }

  /** Median over rounds of the sum of two per-round times. */
  private static double median(List<Double> a, List<Double> b) {
    List<Double> sums = new ArrayList<>();
    for (int i = 0; i < a.size(); i++) {
      sums.add(a.get(i) + b.get(i));
    }
    return LatencyStats.median(sums);
  }

  /** The reference: what reading the bytes and hashing them costs with no network in between. */
  private static String readAndHash(Path file) throws IOException {
    MessageDigest md = Sha256.newDigest();
    byte[] buf = new byte[CHUNK];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return Sha256.hex(md.digest());
  }

  private static void writeRandom(Path file, long bytes) throws IOException {
    SplittableRandom random = new SplittableRandom(42);
    byte[] buf = new byte[CHUNK];
    try (OutputStream out = Files.newOutputStream(file)) {
      for (long left = bytes; left > 0; left -= buf.length) {
        random.nextBytes(buf);
        out.write(buf, 0, (int) Math.min(buf.length, left));
      }
    }
  }

  private static void check(String expected, String found, String what) {
    if (!expected.equals(found)) {
      throw new IllegalStateException(
          what + ": expected sha256 " + expected + ", found " + found + " (bytes corrupted)");
    }
  }
}
