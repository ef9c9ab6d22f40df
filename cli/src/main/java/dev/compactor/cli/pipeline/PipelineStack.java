package dev.compactor.cli.pipeline;

import dev.compactor.infra.DataDirSecret;
import dev.compactor.infra.LocalStack;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.KafkaClientProperties;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageService;
import dev.compactor.services.distillation.DistillationStage;
import dev.compactor.services.evaluation.EvaluationStage;
import dev.compactor.services.factorization.FactorizationStage;
import dev.compactor.services.ingestion.IngestionStage;
import dev.compactor.services.orchestrator.OrchestratorConfig;
import dev.compactor.services.orchestrator.OrchestratorService;
import dev.compactor.services.pruning.PruningStage;
import dev.compactor.services.publishing.PublishingStage;
import dev.compactor.services.quantization.QuantizationStage;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The whole Compactor pipeline in one JVM: the embedded {@link LocalStack} (Kafka, S3, schema
 * registry) or a backbone running elsewhere, the orchestrator and one worker per stage service —
 * what {@code compactor demo} and {@code compactor up} run, and what the end-to-end tests start.
 * Each worker is the same {@link StageService} a deployed service runs, configured against the
 * local endpoints.
 */
public final class PipelineStack implements AutoCloseable {

  /** The stages this stack serves, with the adapter each runs. */
  public static final List<String> STAGES =
      List.of("ingestion", "prune", "quantize", "distill", "factorize", "evaluate", "publish");

  /** How the stage workers run. */
  public enum Workers {
    /** In this JVM: quick to start (tests). */
    IN_PROCESS,
    /**
     * One JVM per stage service ({@link WorkerProcess}): a worker running out of memory or crashing
     * takes down only itself ({@code up} and {@code demo}).
     */
    PROCESSES,
    /** None: only the backbone and the orchestrator (workers are started by the caller). */
    NONE
  }

  /**
   * Where the backbone (Kafka, schema registry, S3) of a stack is, and the credentials for it.
   *
   * @param schemaRegistryUserInfo {@code user:password} for the registry, "" for none
   * @param kafkaPropertiesFile Kafka client security settings (COMPACTOR_KAFKA_PROPERTIES_FILE), ""
   *     for none
   */
  public record Endpoints(
      String bootstrapServers,
      String schemaRegistryUrl,
      String s3Endpoint,
      String s3AccessKey,
      String s3SecretKey,
      String s3Region,
      String schemaRegistryUserInfo,
      String kafkaPropertiesFile) {

    /** A backbone without registry or Kafka authentication. */
    public Endpoints(
        String bootstrapServers,
        String schemaRegistryUrl,
        String s3Endpoint,
        String s3AccessKey,
        String s3SecretKey,
        String s3Region) {
      this(
          bootstrapServers,
          schemaRegistryUrl,
          s3Endpoint,
          s3AccessKey,
          s3SecretKey,
          s3Region,
          "",
          "");
    }

    /** The endpoints of an embedded stack. */
    public static Endpoints of(LocalStack s) {
      return new Endpoints(
          s.bootstrapServers(),
          s.schemaRegistryUrl(),
          s.s3Endpoint().toString(),
          s.s3AccessKey(),
          s.s3SecretKey(),
          s.s3Region(),
          s.schemaRegistryUserInfo(),
          s.kafkaClientPropertiesFile().toString());
    }
  }

  /** The file under the data directory holding the job API's bearer token. */
  public static final String API_TOKEN_FILE = "api-token";

  /** Where {@link #start} keeps the embedded backbone's state under the data directory. */
  public static final String STACK_DIR = "stack";

  private final LocalStack stack;
  private final Endpoints endpoints;
  private final OrchestratorService orchestrator;
  private final Map<String, List<StageService>> workers = new LinkedHashMap<>();
  private final List<WorkerProcess> processes = new ArrayList<>();
  private final BlobStore blobs;
  private final Path workRoot;
  private final Path logDir;
  private final String apiToken;
  private final String fileRoots;

  private PipelineStack(
      LocalStack stack,
      Endpoints endpoints,
      OrchestratorService orchestrator,
      Path workRoot,
      String apiToken,
      String fileRoots) {
    this.stack = stack;
    this.endpoints = endpoints;
    this.orchestrator = orchestrator;
    this.workRoot = workRoot;
    this.logDir = workRoot.resolveSibling("logs");
    this.apiToken = apiToken;
    this.fileRoots = fileRoots;
    this.blobs = BlobStore.create(stageConfig("ingestion", "client"));
  }

  /**
   * Starts the stack with its state under {@code dataDir} and one worker per stage.
   *
   * @param orchestratorPort HTTP port of the job API (0: any free port)
   */
  public static PipelineStack start(Path dataDir, int orchestratorPort) throws IOException {
    return start(dataDir, orchestratorPort, Workers.IN_PROCESS, List.of());
  }

  /**
   * Starts the stack with its state under {@code dataDir} and one worker per stage, run as {@code
   * workers} says; jobs may name {@code file://} sources under the data directory and under {@code
   * fileRoots} (COMPACTOR_SOURCE_FILE_ROOTS), {@code s3://} ones in the artifact and data buckets.
   */
  public static PipelineStack start(
      Path dataDir, int orchestratorPort, Workers workers, List<Path> fileRoots)
      throws IOException {
    LocalStack stack = LocalStack.start(dataDir.resolve(STACK_DIR));
    try {
      return start(stack, Endpoints.of(stack), dataDir, orchestratorPort, workers, fileRoots);
    } catch (IOException | RuntimeException e) {
      stack.close();
      throw e;
    }
  }

  /**
   * Starts the orchestrator and one worker per stage against a backbone running elsewhere (e.g.
   * containers); creates the buckets and topics it needs.
   */
  public static PipelineStack connect(Endpoints endpoints, Path dataDir, int orchestratorPort)
      throws IOException {
    return start(null, endpoints, dataDir, orchestratorPort, Workers.IN_PROCESS, List.of());
  }

  private static PipelineStack start(
      LocalStack stack,
      Endpoints endpoints,
      Path dataDir,
      int orchestratorPort,
      Workers workers,
      List<Path> extraFileRoots)
      throws IOException {
    OrchestratorService orchestrator = null;
    try {
      String token = DataDirSecret.readOrCreate(dataDir.resolve(API_TOKEN_FILE));
      List<String> roots = new ArrayList<>();
      roots.add(dataDir.toAbsolutePath().toString());
      extraFileRoots.forEach(r -> roots.add(r.toAbsolutePath().toString()));
      String fileRoots = String.join(File.pathSeparator, roots);
      Map<String, String> env = new HashMap<>();
      env.put(OrchestratorConfig.KAFKA_BOOTSTRAP.env(), endpoints.bootstrapServers());
      env.put(OrchestratorConfig.SCHEMA_REGISTRY_URL.env(), endpoints.schemaRegistryUrl());
      env.put(
          OrchestratorConfig.SCHEMA_REGISTRY_USER_INFO.env(), endpoints.schemaRegistryUserInfo());
      env.put(OrchestratorConfig.KAFKA_PROPERTIES_FILE.env(), endpoints.kafkaPropertiesFile());
      env.put(OrchestratorConfig.HTTP_PORT.env(), Integer.toString(orchestratorPort));
      env.put(OrchestratorConfig.API_TOKEN.env(), token);
      env.put(OrchestratorConfig.SOURCE_FILE_ROOTS.env(), fileRoots);
      env.put(OrchestratorConfig.STATE_DIR.env(), dataDir.resolve("orchestrator").toString());
      orchestrator = OrchestratorService.start(OrchestratorConfig.of(env));
      PipelineStack p =
          new PipelineStack(
              stack,
              endpoints,
              orchestrator,
              Files.createDirectories(dataDir.resolve("work")),
              token,
              fileRoots);
      p.blobs.ensureBucket(LocalStack.ARTIFACTS_BUCKET);
      p.blobs.ensureBucket(LocalStack.DATA_BUCKET);
      try {
        for (String stage : STAGES) {
          switch (workers) {
            case IN_PROCESS -> p.addWorker(stage, stage + "-1");
            case PROCESSES -> p.addProcess(stage, stage + "-1", List.of());
            case NONE -> {}
          }
        }
      } catch (IOException | RuntimeException e) {
        p.closeWorkers();
        throw e;
      }
      return p;
    } catch (IOException | RuntimeException e) {
      if (orchestrator != null) {
        orchestrator.close();
      }
      throw e;
    }
  }

  /** Starts one more worker of {@code stage} (same consumer group) with identity {@code id}. */
  public synchronized StageService addWorker(String stage, String id) {
    StageConfig config = stageConfig(stage, id);
    StageService service = StageService.start(adapter(stage).apply(config), config);
    workers.computeIfAbsent(stage, s -> new ArrayList<>()).add(service);
    return service;
  }

  /**
   * Starts one more worker of {@code stage} in a JVM of its own (same consumer group), logging to
   * {@code <data>/logs/<id>.log}.
   *
   * @param jvmOptions extra JVM options, e.g. a memory limit
   */
  public synchronized WorkerProcess addProcess(String stage, String id, List<String> jvmOptions)
      throws IOException {
    return addProcess(stage, id, jvmOptions, Map.of());
  }

  /**
   * {@link #addProcess(String, String, List)} with some settings replaced.
   *
   * @param settings {@code COMPACTOR_*} values that replace the stack's
   */
  public synchronized WorkerProcess addProcess(
      String stage, String id, List<String> jvmOptions, Map<String, String> settings)
      throws IOException {
    Map<String, String> env = stageEnv(stage, id);
    env.putAll(settings);
    StageConfig.of(env); // a bad setting fails here, not in a log file
    WorkerProcess w = WorkerProcess.start(stage, id, env, jvmOptions, logDir);
    processes.add(w);
    return w;
  }

  /** The worker processes started so far (alive or not). */
  public synchronized List<WorkerProcess> processes() {
    return List.copyOf(processes);
  }

  /** Where worker processes log. */
  public Path logDir() {
    return logDir;
  }

  /** The running workers of {@code stage}. */
  public synchronized List<StageService> workers(String stage) {
    return List.copyOf(workers.getOrDefault(stage, List.of()));
  }

  /** Stops one worker as a crash would look to the others: its running job is abandoned. */
  public synchronized void stopWorker(StageService worker) {
    workers.values().forEach(l -> l.remove(worker));
    worker.close();
  }

  /** The settings a stage worker of this stack gets. */
  public StageConfig stageConfig(String stage, String workerId) {
    return StageConfig.of(stageEnv(stage, workerId));
  }

  /** {@link #stageConfig} as environment variables. */
  public Map<String, String> stageEnv(String stage, String workerId) {
    Map<String, String> env = new HashMap<>();
    env.put(StageConfig.KAFKA_BOOTSTRAP.envName(), endpoints.bootstrapServers());
    env.put(StageConfig.SCHEMA_REGISTRY_URL.envName(), endpoints.schemaRegistryUrl());
    env.put(StageConfig.SCHEMA_REGISTRY_USER_INFO.envName(), endpoints.schemaRegistryUserInfo());
    env.put(StageConfig.KAFKA_PROPERTIES_FILE.envName(), endpoints.kafkaPropertiesFile());
    env.put(StageConfig.SOURCE_FILE_ROOTS.envName(), fileRoots);
    env.put(StageConfig.S3_ENDPOINT.envName(), endpoints.s3Endpoint());
    env.put(StageConfig.S3_ACCESS_KEY.envName(), endpoints.s3AccessKey());
    env.put(StageConfig.S3_SECRET_KEY.envName(), endpoints.s3SecretKey());
    env.put(StageConfig.S3_REGION.envName(), endpoints.s3Region());
    env.put(StageConfig.S3_BUCKET.envName(), LocalStack.ARTIFACTS_BUCKET);
    env.put(StageConfig.STAGE.envName(), stage);
    env.put(StageConfig.WORKER_ID.envName(), workerId);
    // one scratch root for all: a starting worker deletes what killed workers left (lock free)
    env.put(StageConfig.WORK_DIR.envName(), workRoot.toString());
    env.put(StageConfig.SESSION_TIMEOUT_MS.envName(), "10000");
    env.put(StageConfig.RETRY_ATTEMPTS.envName(), "3");
    return env;
  }

  private static Function<StageConfig, Stage> adapter(String stage) {
    return switch (stage) {
      case "ingestion" -> c -> new IngestionStage();
      case "prune" -> c -> new PruningStage();
      case "quantize" -> c -> new QuantizationStage();
      case "distill" ->
          c ->
              DistillationStage.withS3Checkpoints(
                  BlobStore.create(c), c.get(StageConfig.S3_BUCKET));
      case "factorize" -> c -> new FactorizationStage();
      case "evaluate" ->
          c -> {
            BlobStore b = BlobStore.create(c);
            return new EvaluationStage(
                (where, json) -> b.putBytes(where, json, "application/json"),
                EvaluationStage.DEFAULT_MAX_CHARS);
          };
      case "publish" -> c -> new PublishingStage(BlobStore.create(c));
      default -> throw new IllegalArgumentException("no service for stage " + stage);
    };
  }

  /** The backbone's endpoints. */
  public Endpoints endpoints() {
    return endpoints;
  }

  /** A blob store client on the stack's S3 server. */
  public BlobStore blobs() {
    return blobs;
  }

  public String bootstrapServers() {
    return endpoints.bootstrapServers();
  }

  public String schemaRegistryUrl() {
    return endpoints.schemaRegistryUrl();
  }

  /** The bearer token writes to the job API need (kept in {@value #API_TOKEN_FILE}). */
  public String apiToken() {
    return apiToken;
  }

  /** A client of this stack's Kafka and registry, with its credentials. */
  public PipelineClient client() {
    return new PipelineClient(
        endpoints.bootstrapServers(),
        endpoints.schemaRegistryUrl(),
        endpoints.schemaRegistryUserInfo(),
        KafkaClientProperties.load(endpoints.kafkaPropertiesFile()));
  }

  /** The orchestrator's job API, e.g. {@code http://127.0.0.1:8080}. */
  public String orchestratorUrl() {
    return "http://127.0.0.1:" + orchestrator.httpPort();
  }

  private synchronized void closeWorkers() {
    for (List<StageService> l : workers.values()) {
      for (StageService s : l) {
        s.close();
      }
    }
    workers.clear();
    // SIGTERM to all first, so they stop in parallel
    processes.forEach(w -> ProcessHandle.of(w.pid()).ifPresent(ProcessHandle::destroy));
    processes.forEach(WorkerProcess::close);
    processes.clear();
  }

  @Override
  public synchronized void close() {
    closeWorkers();
    orchestrator.close();
    blobs.close();
    if (stack != null) {
      stack.close();
    }
  }
}
