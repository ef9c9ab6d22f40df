package dev.compactor.bench;

import dev.compactor.runtime.ArtifactManifest;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A deliberately cheap stage for measuring the pipeline around it: it writes every input file
 * byte-reversed to its output (so each step stores a new, verifiable artifact) and records, per
 * {@code (jobId, step)}, the {@link System#nanoTime()} at which {@link #run} began and ended.
 *
 * <p>The times are taken in the same JVM as the benchmark's producer and consumers, so they share
 * one monotonic clock with them.
 */
final class TimedReverseStage implements Stage {
  /** Inputs are small test artifacts; anything larger means the benchmark was misconfigured. */
  private static final long MAX_FILE_BYTES = 64L * 1024 * 1024;

  /** When {@code run} began and ended for one step, nanoTime. */
  record Span(long startNs, long endNs) {}

  private final Map<String, Span> spans = new ConcurrentHashMap<>();

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    long start = System.nanoTime();
    String key = key(ctx.jobId(), ctx.request().getStep());
    ArtifactManifest in =
        ctx.inputManifest()
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "bench stage: expected an input artifact, found none"));
    long bytes = 0;
    for (ArtifactManifest.FileEntry f : in.files()) {
      if (f.size() > MAX_FILE_BYTES) {
        throw new IllegalArgumentException(
            "bench stage input "
                + f.path()
                + ": expected at most "
                + MAX_FILE_BYTES
                + " bytes, found "
                + f.size());
      }
      byte[] data = Files.readAllBytes(ctx.inputDir().resolve(f.path()));
      for (int i = 0, j = data.length - 1; i < j; i++, j--) {
        byte t = data[i];
        data[i] = data[j];
        data[j] = t;
      }
      Path out = ctx.outputDir().resolve(f.path());
      Files.createDirectories(out.getParent());
      Files.write(out, data);
      bytes += data.length;
    }
    spans.put(key, new Span(start, System.nanoTime()));
    return StageResult.of(ctx.outputDir(), "bench-bytes", Map.of("bytes", (double) bytes));
  }

  /** The span of a step that ran to completion, or null. */
  Span span(String jobId, int step) {
    return spans.get(key(jobId, step));
  }

  private static String key(String jobId, int step) {
    return jobId + "#" + step;
  }
}
