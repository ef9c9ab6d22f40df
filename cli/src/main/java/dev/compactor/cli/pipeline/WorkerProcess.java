package dev.compactor.cli.pipeline;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One stage service in a JVM of its own, started from this JVM's classpath with its settings in the
 * environment — exactly as a deployed service runs. An out-of-memory error, a native crash or
 * {@code kill -9} there takes down that worker only; the others, the orchestrator and the broker
 * keep running, and the stage's consumer group hands the job to another worker. The child exits
 * when this JVM does ({@code COMPACTOR_PARENT_PID}); its output goes to a log file.
 */
public final class WorkerProcess implements AutoCloseable {
  private final String stage;
  private final String id;
  private final Process process;
  private final Path log;

  private WorkerProcess(String stage, String id, Process process, Path log) {
    this.stage = stage;
    this.id = id;
    this.process = process;
    this.log = log;
  }

  /**
   * Starts the service of {@code stage}.
   *
   * @param env its {@code COMPACTOR_*} settings
   * @param jvmOptions extra JVM options (e.g. {@code -Xmx512m})
   * @param logDir where {@code <id>.log} goes
   */
  static WorkerProcess start(
      String stage, String id, Map<String, String> env, List<String> jvmOptions, Path logDir)
      throws IOException {
    Path log = Files.createDirectories(logDir).resolve(id + ".log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Dai.djl.offline=true");
    // core's native inference kernels (dev.compactor.core.infer) need the incubator Vector API
    cmd.add("--add-modules");
    cmd.add("jdk.incubator.vector");
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(mainClass(stage));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    pb.environment().putAll(env);
    pb.environment().put("COMPACTOR_PARENT_PID", Long.toString(ProcessHandle.current().pid()));
    pb.environment().putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
    return new WorkerProcess(stage, id, pb.start(), log);
  }

  /** The main class of each stage's service. */
  static String mainClass(String stage) {
    return switch (stage) {
      case "ingestion" -> "dev.compactor.services.ingestion.IngestionService";
      case "prune" -> "dev.compactor.services.pruning.PruningService";
      case "quantize" -> "dev.compactor.services.quantization.QuantizationService";
      case "distill" -> "dev.compactor.services.distillation.DistillationService";
      case "factorize" -> "dev.compactor.services.factorization.FactorizationService";
      case "evaluate" -> "dev.compactor.services.evaluation.EvaluationService";
      case "publish" -> "dev.compactor.services.publishing.PublishingService";
      default -> throw new IllegalArgumentException("no service for stage " + stage);
    };
  }

  public String stage() {
    return stage;
  }

  public String id() {
    return id;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Its log file (stdout and stderr). */
  public Path log() {
    return log;
  }

  /** SIGKILL, as a crash: nothing of its running job is published; another worker redoes it. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGTERM (the service abandons its running job and leaves its group), then SIGKILL. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }
}
