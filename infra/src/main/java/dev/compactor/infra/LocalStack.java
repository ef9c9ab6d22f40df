package dev.compactor.infra;

import dev.compactor.infra.registry.KafkaSchemaStore;
import dev.compactor.infra.registry.RegistryAuth;
import dev.compactor.infra.registry.SchemaRegistryServer;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import io.minio.BucketExistsArgs;
import io.minio.MakeBucketArgs;
import io.minio.MinioClient;
import io.minio.http.HttpUtils;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import okhttp3.OkHttpClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The whole Compactor backbone in one JVM for development, the demo and tests: a Kafka broker
 * ({@link EmbeddedKafka}) with every topic of {@link Topics} created, an S3 server ({@link
 * EmbeddedS3}) with the {@value #ARTIFACTS_BUCKET} and {@value #DATA_BUCKET} buckets, and a schema
 * registry. All state lives under one directory; starting again on the same directory keeps topics,
 * offsets, objects, secrets and ports.
 *
 * <p>Nothing is open to other users of the host: everything listens on the loopback, Kafka requires
 * SASL/PLAIN (user {@value EmbeddedKafka#SASL_USER}; {@link #kafkaClientPropertiesFile()} is the
 * {@code COMPACTOR_KAFKA_PROPERTIES_FILE} for it), the registry HTTP basic auth ({@link
 * #schemaRegistryUserInfo()} may register, {@link #schemaRegistryAdminUserInfo()} may also change
 * compatibility), S3 a generated secret. Each secret is generated once per data directory (mode
 * 0600) and reused. The ports chosen on the first start are recorded in {@value #PORTS_FILE} and
 * reused, so clients and external workers configured once keep working across restarts; a port
 * taken meanwhile is a clear error.
 *
 * <pre>{@code
 * try (LocalStack stack = LocalStack.start(Path.of("/tmp/compactor"))) {
 *   String bootstrap = stack.bootstrapServers();
 *   URI s3 = stack.s3Endpoint();
 *   String registry = stack.schemaRegistryUrl();
 * }
 * }</pre>
 */
public final class LocalStack implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(LocalStack.class);

  /** Bucket for model artifacts and completion markers. */
  public static final String ARTIFACTS_BUCKET = "compactor-artifacts";

  /** Bucket for source models and calibration data. */
  public static final String DATA_BUCKET = "compactor-data";

  /** The file under the data directory recording the ports of the first start. */
  public static final String PORTS_FILE = "ports.properties";

  /** The file of Kafka client security settings ({@code COMPACTOR_KAFKA_PROPERTIES_FILE}). */
  public static final String KAFKA_CLIENT_PROPERTIES = "kafka-client.properties";

  /** The registry user that may register schemas (the services). */
  public static final String REGISTRY_USER = "compactor";

  /** The registry user that may also change compatibility. */
  public static final String REGISTRY_ADMIN = "admin";

  private static final Duration TOPIC_READY_TIMEOUT = Duration.ofSeconds(60);

  private final Path dataDir;
  private final EmbeddedKafka kafka;
  private final EmbeddedS3 s3;
  private final AutoCloseable registry;
  private final String registryUrl;
  private final String registryUserInfo;
  private final String registryAdminUserInfo;
  private final Duration startupTime;

  private LocalStack(
      Path dataDir, EmbeddedKafka kafka, EmbeddedS3 s3, Registry registry, Duration startupTime) {
    this.dataDir = dataDir;
    this.kafka = kafka;
    this.s3 = s3;
    this.registry = registry.server();
    this.registryUrl = registry.url();
    this.registryUserInfo = registry.userInfo();
    this.registryAdminUserInfo = registry.adminUserInfo();
    this.startupTime = startupTime;
  }

  /** Starts Kafka, S3 and the schema registry with state under {@code dataDir}. */
  public static LocalStack start(Path dataDir) throws IOException {
    long t0 = System.nanoTime();
    Path dir = Files.createDirectories(dataDir.toAbsolutePath());
    List<AutoCloseable> started = new ArrayList<>();
    StackPorts ports = StackPorts.load(dir.resolve(PORTS_FILE));
    try {
      EmbeddedKafka kafka =
          EmbeddedKafka.start(
              dir,
              Map.of(),
              ports.get(StackPorts.KAFKA),
              ports.get(StackPorts.KAFKA_CONTROLLER),
              DataDirSecret.readOrCreate(dir.resolve("kafka-password")));
      started.add(kafka);
      writeClientProperties(kafka, dir.resolve(KAFKA_CLIENT_PROPERTIES));
      EmbeddedS3 s3 = EmbeddedS3.start(dir, ports.get(StackPorts.S3));
      started.add(s3);
      createBuckets(s3);
      createTopics(kafka);
      Registry registry = startRegistry(kafka, dir, ports.get(StackPorts.REGISTRY));
      started.add(registry.server());
      ports.record(
          Map.of(
              StackPorts.KAFKA, kafka.brokerPort(),
              StackPorts.KAFKA_CONTROLLER, kafka.controllerPort(),
              StackPorts.S3, s3.endpoint().getPort(),
              StackPorts.REGISTRY, URI.create(registry.url()).getPort()));
      Duration took = Duration.ofNanos(System.nanoTime() - t0);
      log.info(
          "Local stack ready in {} ms: kafka {}, s3 {}, schema registry {}, data {}",
          took.toMillis(),
          kafka.bootstrapServers(),
          s3.endpoint(),
          registry.url(),
          dir);
      return new LocalStack(dir, kafka, s3, registry, took);
    } catch (IOException | RuntimeException e) {
      closeAll(started);
      throw ports.explain(e);
    }
  }

  /**
   * Runs the stack until the JVM is stopped (Ctrl-C), for services started by hand or from an IDE:
   * {@code LocalStack [dataDir]} (default {@code ./compactor-local}). The endpoints are logged.
   */
  public static void main(String[] args) throws IOException, InterruptedException {
    Path dataDir = Path.of(args.length > 0 ? args[0] : "compactor-local");
    LocalStack stack = start(dataDir);
    Runtime.getRuntime().addShutdownHook(new Thread(stack::close, "local-stack-shutdown"));
    log.info(
        "Local stack running; stop with Ctrl-C.\n  kafka bootstrap: {}\n  s3 endpoint: {} (access"
            + " key {}, secret {}, region {}, buckets {} and {})\n  schema registry: {}",
        stack.bootstrapServers(),
        stack.s3Endpoint(),
        stack.s3AccessKey(),
        stack.s3SecretKey(),
        stack.s3Region(),
        ARTIFACTS_BUCKET,
        DATA_BUCKET,
        stack.schemaRegistryUrl());
    Thread.currentThread().join();
  }

  /** Kafka {@code bootstrap.servers}. */
  public String bootstrapServers() {
    return kafka.bootstrapServers();
  }

  /** The S3 endpoint, e.g. {@code http://127.0.0.1:41234}. */
  public URI s3Endpoint() {
    return s3.endpoint();
  }

  /** S3 access key. */
  public String s3AccessKey() {
    return s3.accessKey();
  }

  /** S3 secret key. */
  public String s3SecretKey() {
    return s3.secretKey();
  }

  /** S3 region to sign for. */
  public String s3Region() {
    return EmbeddedS3.REGION;
  }

  /** Base URL of the Confluent-compatible schema registry. */
  public String schemaRegistryUrl() {
    return registryUrl;
  }

  /** {@code user:password} of the registry user that may register schemas. */
  public String schemaRegistryUserInfo() {
    return registryUserInfo;
  }

  /** {@code user:password} of the registry user that may also change compatibility. */
  public String schemaRegistryAdminUserInfo() {
    return registryAdminUserInfo;
  }

  /**
   * The Kafka client security settings (SASL) as a properties file, mode 0600: what {@code
   * COMPACTOR_KAFKA_PROPERTIES_FILE} names for every client of this stack.
   */
  public Path kafkaClientPropertiesFile() {
    return dataDir.resolve(KAFKA_CLIENT_PROPERTIES);
  }

  /** The Kafka node (for client properties with matching size limits). */
  public EmbeddedKafka kafka() {
    return kafka;
  }

  /** The S3 server. */
  public EmbeddedS3 s3() {
    return s3;
  }

  /** The directory holding all state. */
  public Path dataDir() {
    return dataDir;
  }

  /** How long {@link #start} took. */
  public Duration startupTime() {
    return startupTime;
  }

  /** Stops the registry, S3 and Kafka, releasing every port, thread and file. */
  @Override
  public void close() {
    long t0 = System.nanoTime();
    closeAll(List.of(kafka, s3, registry));
    log.info("Local stack stopped in {} ms", (System.nanoTime() - t0) / 1_000_000);
  }

  private record Registry(
      AutoCloseable server, String url, String userInfo, String adminUserInfo) {}

  /**
   * The Confluent-compatible registry, its state in a compacted topic of the stack's Kafka, behind
   * basic auth with a writer and an admin whose passwords are kept in the data directory.
   */
  private static Registry startRegistry(EmbeddedKafka kafka, Path dir, int port)
      throws IOException {
    Map<String, Object> clients = new HashMap<>();
    kafka.clientProperties().forEach((k, v) -> clients.put((String) k, v));
    String writer = DataDirSecret.readOrCreate(dir.resolve("registry-password"));
    String admin = DataDirSecret.readOrCreate(dir.resolve("registry-admin-password"));
    SchemaRegistryServer server =
        SchemaRegistryServer.start(
            new KafkaSchemaStore(clients, KafkaSchemaStore.DEFAULT_TOPIC, (short) 1),
            "127.0.0.1",
            port,
            RegistryAuth.builder()
                .user(REGISTRY_USER, writer, RegistryAuth.Role.WRITE)
                .user(REGISTRY_ADMIN, admin, RegistryAuth.Role.ADMIN)
                .build());
    return new Registry(
        server, server.url(), REGISTRY_USER + ":" + writer, REGISTRY_ADMIN + ":" + admin);
  }

  private static void writeClientProperties(EmbeddedKafka kafka, Path file) throws IOException {
    java.io.StringWriter text = new java.io.StringWriter();
    kafka.securityProperties().store(text, "Kafka client security settings of this local stack");
    DataDirSecret.writeOwnerOnly(file, text.toString());
  }

  private static void createBuckets(EmbeddedS3 s3) {
    long timeoutMs = Duration.ofMinutes(1).toMillis();
    // Our own HTTP client, shut down below: MinIO's default one keeps non-daemon dispatcher
    // threads alive for 60 s, which would hold the JVM open after the stack is closed.
    OkHttpClient http = HttpUtils.newDefaultHttpClient(timeoutMs, timeoutMs, timeoutMs);
    MinioClient client =
        MinioClient.builder()
            .endpoint(s3.endpoint().toString())
            .credentials(s3.accessKey(), s3.secretKey())
            .region(EmbeddedS3.REGION)
            .httpClient(http)
            .build();
    try {
      for (String bucket : List.of(ARTIFACTS_BUCKET, DATA_BUCKET)) {
        try {
          if (!client.bucketExists(BucketExistsArgs.builder().bucket(bucket).build())) {
            client.makeBucket(MakeBucketArgs.builder().bucket(bucket).build());
          }
        } catch (Exception e) {
          throw new IllegalStateException("could not create bucket " + bucket + ": " + e, e);
        }
      }
    } finally {
      http.dispatcher().executorService().shutdown();
      http.connectionPool().evictAll();
    }
  }

  private static void createTopics(EmbeddedKafka kafka) {
    try (Admin admin = Admin.create(kafka.clientProperties())) {
      Set<String> existing = admin.listTopics().names().get();
      List<NewTopic> wanted = new ArrayList<>();
      for (Topic<String, ?> topic : Topics.all()) {
        wanted.add(topic.newTopic((short) 1));
      }
      // The registry's own topic is created here too, so that it is visible in the broker's
      // metadata before the registry describes it.
      wanted.add(
          new NewTopic(KafkaSchemaStore.DEFAULT_TOPIC, 1, (short) 1)
              .configs(
                  Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT)));
      List<NewTopic> missing = new ArrayList<>();
      List<String> names = new ArrayList<>();
      for (NewTopic t : wanted) {
        names.add(t.name());
        if (!existing.contains(t.name())) {
          missing.add(t);
        }
      }
      try {
        admin.createTopics(missing).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) {
          throw e;
        }
      }
      awaitMetadata(admin, names);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while creating topics", e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("could not create topics: " + e.getCause(), e.getCause());
    }
  }

  /**
   * Waits until the broker serves metadata (with a leader) for every partition of {@code names}.
   */
  private static void awaitMetadata(Admin admin, List<String> names)
      throws InterruptedException, ExecutionException {
    long deadline = System.nanoTime() + TOPIC_READY_TIMEOUT.toNanos();
    while (true) {
      try {
        Map<String, TopicDescription> d = admin.describeTopics(names).allTopicNames().get();
        boolean led =
            d.values().stream()
                .allMatch(t -> t.partitions().stream().allMatch(p -> p.leader() != null));
        if (led) {
          return;
        }
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
          throw e;
        }
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "topics not ready after " + TOPIC_READY_TIMEOUT.toSeconds() + " s: " + names);
      }
      Thread.sleep(50);
    }
  }

  private static void closeAll(List<AutoCloseable> parts) {
    // Reverse start order: the registry uses Kafka, so Kafka goes last.
    List<AutoCloseable> reversed = new ArrayList<>(parts);
    java.util.Collections.reverse(reversed);
    for (AutoCloseable part : reversed) {
      try {
        part.close();
      } catch (Exception e) {
        log.warn("error while stopping {}: {}", part.getClass().getSimpleName(), e.toString());
      }
    }
  }
}
