package dev.compactor.runtime;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A small real stage for the runtime's tests: writes a byte-reversed copy of every input file and
 * reports how many files and bytes it transformed. Recipe params steer it: {@code work_ms} makes it
 * take that long (in cancellable 100 ms slices, like a stage checking between layers), {@code fail}
 * makes it throw with that message, {@code error: oom|link} makes it throw that JVM {@link Error}
 * (as a real allocation or a missing native library would). It counts its runs per job and step, so
 * tests can prove that nothing was computed twice.
 */
final class TransformStage implements Stage {
  final Map<String, AtomicInteger> runs = new ConcurrentHashMap<>();
  final Map<String, AtomicInteger> started = new ConcurrentHashMap<>();

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    String key = ctx.jobId() + "/" + ctx.request().getStep();
    started.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    long workMs = ctx.params().integer("work_ms", 0);
    CountDownLatch never = new CountDownLatch(1);
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(workMs);
    while (System.nanoTime() < deadline) {
      ctx.checkCancelled();
      never.await(100, TimeUnit.MILLISECONDS);
      ctx.progress().report(1 - (deadline - System.nanoTime()) / (workMs * 1e6), "working");
    }
    ctx.checkCancelled();
    String error = ctx.params().string("error", null);
    if ("oom".equals(error)) {
      throw new OutOfMemoryError("Java heap space");
    } else if ("link".equals(error)) {
      throw new UnsatisfiedLinkError("'void ai.djl.pytorch.jni.PyTorchLibrary.torchSetGradMode'");
    }
    String fail = ctx.params().string("fail", null);
    if (fail != null) {
      throw new IllegalStateException("transform failed", new IllegalArgumentException(fail));
    }
    long bytes = 0;
    List<Path> files;
    try (Stream<Path> walk = Files.walk(ctx.inputDir())) {
      files = walk.filter(Files::isRegularFile).toList();
    }
    for (Path in : files) {
      byte[] data = Files.readAllBytes(in);
      byte[] reversed = new byte[data.length];
      for (int i = 0; i < data.length; i++) {
        reversed[i] = data[data.length - 1 - i];
      }
      Path out = ctx.outputDir().resolve(ctx.inputDir().relativize(in).toString());
      Files.createDirectories(out.getParent());
      Files.write(out, reversed);
      bytes += data.length;
    }
    runs.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
    return StageResult.of(
        ctx.outputDir(),
        "test-reversed",
        Map.of("files", (double) files.size(), "bytes", (double) bytes));
  }

  int runs(String jobId, int step) {
    AtomicInteger n = runs.get(jobId + "/" + step);
    return n == null ? 0 : n.get();
  }

  int started(String jobId, int step) {
    AtomicInteger n = started.get(jobId + "/" + step);
    return n == null ? 0 : n.get();
  }
}
