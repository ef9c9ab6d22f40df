package dev.compactor.bench;

import dev.compactor.runtime.StageConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The settings of {@link PipelineHopBench}, parsed from {@code --flag value} arguments; every count
 * and size is bounded so a run always stops by itself.
 *
 * @param stages number of chained stage workers (1..6: prune, quantize, distill, factorize,
 *     evaluate, publish)
 * @param jobs measured jobs, run one after another
 * @param warmupJobs jobs run first and left out of the figures (registry look-ups, JIT, clients)
 * @param artifactKib size of each job's input artifact, KiB
 * @param blobMib size of the blob for the round-trip part, MiB
 * @param blobRounds repetitions of the round-trip part
 * @param pollTimeoutMs the workers' {@code COMPACTOR_POLL_TIMEOUT_MS}
 * @param dir where the stack and scratch files live (a fresh temp directory when null)
 * @param json print one JSON object on stdout (the table goes to stderr)
 */
record BenchOptions(
    int stages,
    int jobs,
    int warmupJobs,
    int artifactKib,
    int blobMib,
    int blobRounds,
    int pollTimeoutMs,
    Path dir,
    boolean json) {

  static final String USAGE =
      "Usage: PipelineHopBench [--stages 3] [--jobs 30] [--warmup 2] [--artifact-kib 64]"
          + " [--blob-mib 256] [--blob-rounds 3] [--poll-timeout-ms <runtime default>]"
          + " [--dir <temp dir>] [--json]";

  BenchOptions {
    check("--stages", stages, 1, 6);
    check("--jobs", jobs, 1, 10_000);
    check("--warmup", warmupJobs, 0, 100);
    check("--artifact-kib", artifactKib, 1, 64 * 1024);
    check("--blob-mib", blobMib, 1, 16 * 1024);
    check("--blob-rounds", blobRounds, 1, 100);
    check("--poll-timeout-ms", pollTimeoutMs, 10, 60_000);
  }

  /** The defaults: 3 stages, 30 jobs, 64 KiB artifacts, 256 MiB blob, 3 rounds. */
  static BenchOptions defaults() {
    return parse(new String[0]);
  }

  /**
   * Parses {@code args}.
   *
   * @throws IllegalArgumentException naming the unknown flag, missing value or value out of range
   */
  static BenchOptions parse(String[] args) {
    Map<String, String> values = new LinkedHashMap<>();
    boolean json = false;
    for (int i = 0; i < args.length; i++) {
      String flag = args[i];
      if (flag.equals("--json")) {
        json = true;
        continue;
      }
      if (!KNOWN.containsKey(flag)) {
        throw new IllegalArgumentException("unknown flag '" + flag + "'. " + USAGE);
      }
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(flag + ": expected a value, found none. " + USAGE);
      }
      values.put(flag, args[++i]);
    }
    return new BenchOptions(
        integer(values, "--stages"),
        integer(values, "--jobs"),
        integer(values, "--warmup"),
        integer(values, "--artifact-kib"),
        integer(values, "--blob-mib"),
        integer(values, "--blob-rounds"),
        integer(values, "--poll-timeout-ms"),
        values.containsKey("--dir") ? Path.of(values.get("--dir")) : null,
        json);
  }

  private static final Map<String, String> KNOWN =
      Map.of(
          "--stages", "3",
          "--jobs", "30",
          "--warmup", "2",
          "--artifact-kib", "64",
          "--blob-mib", "256",
          "--blob-rounds", "3",
          "--poll-timeout-ms", StageConfig.POLL_TIMEOUT_MS.defaultValue().orElseThrow(),
          "--dir", "");

  private static int integer(Map<String, String> values, String flag) {
    String text = values.getOrDefault(flag, KNOWN.get(flag));
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(flag + ": expected an integer, found '" + text + "'");
    }
  }

  private static void check(String flag, int value, int min, int max) {
    if (value < min || value > max) {
      throw new IllegalArgumentException(
          flag + ": expected " + min + ".." + max + ", found " + value);
    }
  }
}
