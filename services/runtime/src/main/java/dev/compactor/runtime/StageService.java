package dev.compactor.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one start/stop lifecycle of every stage service: builds the schema-registry client, the blob
 * store and a {@link StageWorker} from a {@link StageConfig}, serves {@code GET /health} when
 * {@link StageConfig#HEALTH_PORT} is set, and stops cleanly on SIGTERM. A service's {@code main} is
 * then one line:
 *
 * <pre>{@code
 * public static void main(String[] args) {
 *   StageService.run(new PruningStage());
 * }
 * }</pre>
 */
public final class StageService implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StageService.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final SchemaRegistryClient registry;
  private final StageWorker worker;
  private final BlobStore blobs;
  private final HttpServer health;
  private final BrokerProbe probe;

  private StageService(
      SchemaRegistryClient registry,
      StageWorker worker,
      BlobStore blobs,
      HttpServer health,
      BrokerProbe probe) {
    this.registry = registry;
    this.worker = worker;
    this.blobs = blobs;
    this.health = health;
    this.probe = probe;
  }

  /**
   * Runs {@code stage} with settings from the environment until the process is told to stop; exits
   * the JVM with status 2 on invalid settings and 1 if the worker fails.
   */
  public static void run(Stage stage) {
    StageConfig config;
    try {
      config = StageConfig.fromEnvironment();
      Devices.resolve(config, stage);
    } catch (StageConfig.ConfigException | Devices.UnavailableDeviceException e) {
      log.error("{}\nSettings:\n{}", e.getMessage(), StageConfig.documentation());
      System.exit(2);
      return;
    }
    if (!run(stage, config)) {
      System.exit(1);
    }
  }

  /**
   * Runs {@code stage} until the JVM shuts down or the worker fails.
   *
   * @return true when it stopped because it was asked to, false when the worker failed
   */
  public static boolean run(Stage stage, StageConfig config) {
    StageService service;
    try {
      service = start(stage, config);
    } catch (Devices.UnavailableDeviceException e) {
      log.error("Not starting: {}", e.getMessage());
      return false;
    }
    Thread hook = new Thread(service::close, "stage-service-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    long parent = config.get(StageConfig.PARENT_PID);
    if (parent > 0) {
      // a worker started by `compactor up` must not outlive it, even after a kill -9 of it
      ProcessHandle.of(parent)
          .ifPresentOrElse(
              p ->
                  p.onExit()
                      .thenRun(
                          () -> {
                            log.info("parent process {} ended; stopping", parent);
                            System.exit(0);
                          }),
              () -> System.exit(0));
    }
    try {
      while (!service.worker.awaitTermination(Duration.ofSeconds(1))) {
        // waiting for SIGTERM or a worker failure
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    boolean ok = !"FAILED".equals(service.health().state());
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      return ok;
    }
    service.close();
    return ok;
  }

  /**
   * Starts {@code stage} in the background (e.g. all stages in one JVM for the demo).
   *
   * @throws Devices.UnavailableDeviceException when the stage cannot use {@code COMPACTOR_DEVICE}
   */
  public static StageService start(Stage stage, StageConfig config) {
    long t0 = System.nanoTime();
    Devices.resolve(config, stage);
    log.info("Starting stage service with settings:\n{}", config.describe());
    SchemaRegistryClient registry =
        new RestSchemaRegistryClient(
            config.get(StageConfig.SCHEMA_REGISTRY_URL),
            config.get(StageConfig.SCHEMA_REGISTRY_USER_INFO));
    BlobStore blobs = BlobStore.create(config);
    StageWorker worker = new StageWorker(stage, config, blobs, registry);
    HttpServer server = null;
    BrokerProbe probe = null;
    int port = config.get(StageConfig.HEALTH_PORT);
    try {
      if (port >= 0) {
        probe = new BrokerProbe(config);
        server = healthServer(worker::health, probe, config.get(StageConfig.HEALTH_BIND), port);
      }
      worker.start();
    } catch (IOException | RuntimeException e) {
      if (server != null) {
        server.stop(0);
      }
      if (probe != null) {
        probe.close();
      }
      worker.close();
      blobs.close();
      registry.close();
      throw new IllegalStateException("could not start stage service: " + e.getMessage(), e);
    }
    log.info(
        "Stage service {} started in {} ms{}",
        config.get(StageConfig.STAGE),
        (System.nanoTime() - t0) / 1_000_000,
        server == null ? "" : ", health on port " + server.getAddress().getPort());
    return new StageService(registry, worker, blobs, server, probe);
  }

  /** The worker's current health snapshot. */
  public WorkerHealth health() {
    return worker.health();
  }

  /** The health endpoint's port, when enabled. */
  public Optional<Integer> healthPort() {
    return Optional.ofNullable(health).map(h -> h.getAddress().getPort());
  }

  /** Stops the worker (abandoning a running job to another worker) and the health endpoint. */
  @Override
  public void close() {
    worker.close();
    if (health != null) {
      health.stop(0);
      probe.close();
    }
    blobs.close();
    registry.close();
    log.info("Stage service stopped: {}", worker.health().toJson());
  }

  /**
   * {@code GET /health}: the worker's snapshot plus {@code brokerReachable}; healthy (200) only
   * when the worker runs and its broker answers.
   */
  static HttpServer healthServer(
      java.util.function.Supplier<WorkerHealth> worker, BrokerProbe probe, String bind, int port)
      throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress(bind, port), 0);
    server.createContext(
        "/health",
        exchange -> {
          WorkerHealth h = worker.get();
          boolean broker = probe.reachable();
          boolean healthy = h.healthy() && broker;
          ObjectNode json = (ObjectNode) JSON.readTree(h.toJson());
          json.put("healthy", healthy).put("brokerReachable", broker);
          if (!broker) {
            json.put("brokerProblem", probe.problem());
          }
          byte[] body = json.toString().getBytes(StandardCharsets.UTF_8);
          exchange.getResponseHeaders().add("Content-Type", "application/json");
          exchange.sendResponseHeaders(healthy ? 200 : 503, body.length);
          try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
          }
        });
    server.start();
    return server;
  }
}
