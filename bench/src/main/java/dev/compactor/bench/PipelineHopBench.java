package dev.compactor.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.infra.LocalStack;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Answers "what does the event-driven plumbing cost?" for one machine: the latency from an event
 * being produced to the next stage running, and how fast model bytes move through the S3 server
 * compared with simply reading and hashing them from local disk — all measured in one run on a
 * {@link LocalStack} (real KRaft broker, S3Proxy, schema registry; loopback only).
 *
 * <ul>
 *   <li>(a) {@link HopLatencyBench}: a chain of real stage workers ({@code StageService}) running a
 *       trivial stage; the benchmark chains the requests itself, as the orchestrator would. p50,
 *       p90 and max over the measured jobs, plus the runtime's own S3 calls per job timed alone
 *       ({@link RuntimeS3Overhead}).
 *   <li>(b) {@link BlobRoundTripBench}: put + get of one blob, raw and as a verified artifact,
 *       MiB/s and the ratio to a local file read + SHA-256 of the same bytes.
 * </ul>
 *
 * <p>Build and run from the repository root (the classpath comes from the reactor, nothing is
 * installed):
 *
 * <pre>
 * mvn -B -ntp -q -pl bench -am package dependency:build-classpath \
 *     -Dmdep.outputFile=target/classpath.txt -DskipTests
 * java -Xmx2g -cp bench/target/classes:$(cat bench/target/classpath.txt) \
 *     dev.compactor.bench.PipelineHopBench --stages 3 --jobs 30 --blob-mib 256 [--json]
 * </pre>
 *
 * Flags: see {@link BenchOptions#USAGE}. With {@code --json} one JSON object goes to stdout and the
 * table to stderr. It stops by itself: every count is bounded and every wait has a timeout.
 */
public final class PipelineHopBench {

  private PipelineHopBench() {}

  /** Everything one run measured, with the conditions it was measured under. */
  record Report(
      Instant startedAt,
      String loadBefore,
      String loadAfter,
      int cpus,
      String java,
      double stackStartupMs,
      HopLatencyBench.Result hops,
      BlobRoundTripBench.Result blobs) {}

  public static void main(String[] args) throws Exception {
    BenchOptions options;
    try {
      options = BenchOptions.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.exit(2);
      return;
    }
    Report report = run(options);
    if (options.json()) {
      System.err.print(table(report));
      System.out.println(json(report));
    } else {
      System.out.print(table(report));
    }
    System.out.flush();
  }

  /** Starts a stack, runs both parts and stops the stack. */
  static Report run(BenchOptions options) throws Exception {
    Path dir =
        options.dir() != null
            ? Files.createDirectories(options.dir())
            : Files.createTempDirectory("compactor-hopbench");
    Instant started = Instant.now();
    String loadBefore = loadAverage();
    try {
      HopLatencyBench.Result hops;
      BlobRoundTripBench.Result blobs;
      double startupMs;
      try (LocalStack stack = LocalStack.start(dir.resolve("stack"))) {
        startupMs = stack.startupTime().toNanos() / 1e6;
        hops = HopLatencyBench.run(stack, Files.createDirectories(dir.resolve("hops")), options);
        blobs =
            BlobRoundTripBench.run(stack, Files.createDirectories(dir.resolve("blobs")), options);
      }
      return new Report(
          started,
          loadBefore,
          loadAverage(),
          Runtime.getRuntime().availableProcessors(),
          System.getProperty("java.vm.name") + " " + Runtime.version(),
          startupMs,
          hops,
          blobs);
    } finally {
      if (options.dir() == null) {
        RuntimeS3Overhead.deleteTree(dir);
      }
    }
  }

  /** The human-readable report. */
  static String table(Report r) {
    StringBuilder sb = new StringBuilder();
    HopLatencyBench.Result h = r.hops();
    sb.append(
        String.format(
            Locale.ROOT,
            "Compactor pipeline hop bench, %s, %d CPUs, %s%n"
                + "load average (1/5/15 min) before: %s, after: %s%n"
                + "LocalStack (KRaft broker + S3Proxy + schema registry, loopback) started in"
                + " %.0f ms%n%n",
            r.startedAt(),
            r.cpus(),
            r.java(),
            r.loadBefore(),
            r.loadAfter(),
            r.stackStartupMs()));
    sb.append(
        String.format(
            Locale.ROOT,
            "(a) Hop latency, ms: %d stage workers (%s) on the real runtime, %d jobs one at a time"
                + " (+%d warm-up), input %d KiB,%n    worker poll timeout %d ms; the bench chains"
                + " StageRequested itself on StageCompleted (no Kafka Streams orchestrator)%n",
            h.stages().size(),
            String.join(" -> ", h.stages()),
            h.jobs(),
            h.warmupJobs(),
            h.artifactBytes() / 1024,
            h.pollTimeoutMs()));
    latencyTable(sb, h.segments());
    sb.append(HopSegments.FOOTNOTE).append("\n\n");
    sb.append(
        String.format(
            Locale.ROOT,
            "    Runtime's own S3 work per job, timed alone (%d KiB artifact, %d reps):%n",
            h.artifactBytes() / 1024,
            h.jobs()));
    latencyTable(sb, h.s3Overhead());
    BlobRoundTripBench.Result b = r.blobs();
    sb.append(
        String.format(
            Locale.ROOT,
            "%n(b) Blob round trip: %d MiB of random bytes, median of %d rounds, S3Proxy"
                + " (filesystem backend) via the MinIO SDK over loopback HTTP%n",
            b.bytes() >> 20,
            b.rounds()));
    sb.append(String.format(Locale.ROOT, "%-52s %10s %10s%n", "operation", "MiB/s", "x ref"));
    for (Map.Entry<String, Double> e : b.mibPerSecond().entrySet()) {
      sb.append(
          String.format(
              Locale.ROOT, "%-52s %10.1f %10.3f%n", e.getKey(), e.getValue(), b.ratio(e.getKey())));
    }
    sb.append("    x ref = MiB/s divided by the reference's MiB/s from the same run.\n");
    return sb.toString();
  }

  private static void latencyTable(StringBuilder sb, Map<String, LatencyStats> rows) {
    sb.append(
        String.format(Locale.ROOT, "%-56s %9s %9s %9s %5s%n", "segment", "p50", "p90", "max", "n"));
    rows.forEach(
        (name, s) ->
            sb.append(
                String.format(
                    Locale.ROOT,
                    "%-56s %9.1f %9.1f %9.1f %5d%n",
                    name,
                    s.p50(),
                    s.p90(),
                    s.max(),
                    s.n())));
  }

  /** The report as one JSON object. */
  static String json(Report r) throws JsonProcessingException {
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("startedAt", r.startedAt().toString());
    root.put("loadAverageBefore", r.loadBefore());
    root.put("loadAverageAfter", r.loadAfter());
    root.put("cpus", r.cpus());
    root.put("java", r.java());
    root.put("stackStartupMs", r.stackStartupMs());
    HopLatencyBench.Result h = r.hops();
    Map<String, Object> hops = new LinkedHashMap<>();
    hops.put("stages", h.stages());
    hops.put("jobs", h.jobs());
    hops.put("warmupJobs", h.warmupJobs());
    hops.put("artifactBytes", h.artifactBytes());
    hops.put("pollTimeoutMs", h.pollTimeoutMs());
    hops.put("orchestration", "bench chains StageRequested on StageCompleted (read_committed)");
    hops.put("segmentsMs", statsMap(h.segments()));
    hops.put("runtimeS3OverheadMs", statsMap(h.s3Overhead()));
    root.put("hopLatency", hops);
    BlobRoundTripBench.Result b = r.blobs();
    Map<String, Object> blobs = new LinkedHashMap<>();
    blobs.put("bytes", b.bytes());
    blobs.put("rounds", b.rounds());
    Map<String, Object> ops = new LinkedHashMap<>();
    b.mibPerSecond()
        .forEach((op, rate) -> ops.put(op, Map.of("mibPerSecond", rate, "ratio", b.ratio(op))));
    blobs.put("operations", ops);
    root.put("blobRoundTrip", blobs);
    return new ObjectMapper().writeValueAsString(root);
  }

  private static Map<String, Object> statsMap(Map<String, LatencyStats> stats) {
    Map<String, Object> out = new LinkedHashMap<>();
    stats.forEach((k, v) -> out.put(k.replace("*", "").trim(), v.toMap()));
    return out;
  }

  /** The 1, 5 and 15 minute load averages (the machine is shared; figures depend on it). */
  static String loadAverage() {
    Path proc = Path.of("/proc/loadavg");
    try {
      if (Files.isReadable(proc)) {
        String[] f = Files.readString(proc, StandardCharsets.US_ASCII).trim().split("\\s+");
        return f[0] + " " + f[1] + " " + f[2];
      }
    } catch (IOException e) {
      // fall back to the JVM's 1-minute figure below
    }
    return String.format(
        Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
  }
}
