package dev.compactor.infra;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real single-node Kafka cluster (KRaft broker and controller in one process) running inside the
 * JVM, for local development, the demo and integration tests.
 *
 * <p>Both listeners bind to the loopback on free ports; every internal topic has replication factor
 * 1 (offsets, transaction state, share state) so consumer groups and transactions work on one node;
 * the first rebalance is not delayed; message size limits are raised to {@link #MAX_MESSAGE_BYTES}
 * on the broker, and {@link #clientProperties()} gives clients the matching limits. All state lives
 * under one directory. {@link #close()} shuts the node down and waits for it.
 *
 * <pre>{@code
 * try (EmbeddedKafka kafka = EmbeddedKafka.start(dir)) {
 *   producerProps.put("bootstrap.servers", kafka.bootstrapServers());
 * }
 * }</pre>
 */
public final class EmbeddedKafka implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddedKafka.class);

  /**
   * Largest record the broker accepts. Events carry artifact references only (blobs live in S3),
   * but model metadata can be a few MiB; 16 MiB leaves room without inviting blobs onto Kafka.
   */
  public static final int MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

  private static final String CONTROLLER_LISTENER = "CONTROLLER";
  private static final String BROKER_LISTENER = "PLAINTEXT";
  private static final String SASL_LISTENER = "SASL_PLAINTEXT";

  /** The SASL/PLAIN user of a node started with a password. */
  public static final String SASL_USER = "compactor";

  private static final int NODE_ID = 1;
  private static final int START_ATTEMPTS = 3;

  private final KafkaRaftServer server;
  private final String bootstrapServers;
  private final Path logDir;
  private final int controllerPort;
  private final String saslPassword;
  private boolean closed;

  private EmbeddedKafka(
      KafkaRaftServer server,
      String bootstrapServers,
      Path logDir,
      int controllerPort,
      String saslPassword) {
    this.server = server;
    this.bootstrapServers = bootstrapServers;
    this.logDir = logDir;
    this.controllerPort = controllerPort;
    this.saslPassword = saslPassword;
  }

  /** Starts a node whose log and metadata live under {@code dataDir} (created if missing). */
  public static EmbeddedKafka start(Path dataDir) throws IOException {
    return start(dataDir, Map.of());
  }

  /**
   * Starts a node with extra broker settings layered over the defaults (e.g. {@code
   * log.retention.ms}). An existing, already formatted {@code dataDir} is reused, so a restarted
   * node keeps its topics and offsets.
   */
  public static EmbeddedKafka start(Path dataDir, Map<String, String> brokerOverrides)
      throws IOException {
    return start(dataDir, brokerOverrides, 0, 0);
  }

  /**
   * Starts a node on the given loopback ports (0 = a free one, retried if another process takes it
   * first); a port given but taken is a clear error, not a silent move to another port.
   */
  public static EmbeddedKafka start(
      Path dataDir, Map<String, String> brokerOverrides, int fixedBrokerPort, int fixedCtrlPort)
      throws IOException {
    return start(dataDir, brokerOverrides, fixedBrokerPort, fixedCtrlPort, null);
  }

  /**
   * Starts a node whose client listener requires SASL/PLAIN ({@code SASL_PLAINTEXT}: the loopback
   * is not worth TLS) for user {@value #SASL_USER} with {@code saslPassword}; null = no
   * authentication. {@link #clientProperties()} then carries the matching client settings.
   */
  public static EmbeddedKafka start(
      Path dataDir,
      Map<String, String> brokerOverrides,
      int fixedBrokerPort,
      int fixedCtrlPort,
      String saslPassword)
      throws IOException {
    Path logDir = dataDir.toAbsolutePath().resolve("kafka");
    Files.createDirectories(logDir);
    long t0 = System.nanoTime();
    RuntimeException last = null;
    // Free ports are found by binding port 0 and releasing it; another process can take one in
    // between, so a bind failure is retried on fresh ports.
    boolean fixed = fixedBrokerPort > 0 || fixedCtrlPort > 0;
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      int brokerPort = fixedBrokerPort > 0 ? fixedBrokerPort : freePort();
      int controllerPort = fixedCtrlPort > 0 ? fixedCtrlPort : freePort();
      Map<String, String> props =
          brokerProperties(logDir, brokerPort, controllerPort, saslPassword);
      props.putAll(brokerOverrides);
      KafkaConfig config = new KafkaConfig(props, false);
      format(logDir);
      KafkaRaftServer server = new KafkaRaftServer(config, Time.SYSTEM);
      try {
        server.startup();
      } catch (RuntimeException e) {
        shutdownQuietly(server);
        if (!causedByBind(e)) {
          throw e;
        }
        if (fixed) {
          throw new IllegalStateException(
              "Kafka cannot listen on 127.0.0.1:"
                  + brokerPort
                  + " (controller "
                  + controllerPort
                  + "): the port is taken by another process",
              e);
        }
        log.warn("Kafka port taken while starting (attempt {}), retrying", attempt);
        last = e;
        continue;
      }
      String bootstrap = "127.0.0.1:" + brokerPort;
      EmbeddedKafka kafka =
          new EmbeddedKafka(server, bootstrap, logDir, controllerPort, saslPassword);
      kafka.awaitReady();
      log.info(
          "Embedded Kafka ready at {} (controller 127.0.0.1:{}, data {}) in {} ms",
          bootstrap,
          controllerPort,
          logDir,
          (System.nanoTime() - t0) / 1_000_000);
      return kafka;
    }
    throw new IllegalStateException(
        "could not bind Kafka ports in " + START_ATTEMPTS + " tries", last);
  }

  /** The broker listener's port. */
  public int brokerPort() {
    return Integer.parseInt(bootstrapServers.substring(bootstrapServers.lastIndexOf(':') + 1));
  }

  /** The controller listener's port. */
  public int controllerPort() {
    return controllerPort;
  }

  /** {@code host:port} of the broker listener, for {@code bootstrap.servers}. */
  public String bootstrapServers() {
    return bootstrapServers;
  }

  /** The directory holding this node's log segments and metadata log. */
  public Path logDir() {
    return logDir;
  }

  /**
   * Client settings every producer, consumer and admin of this cluster needs: the bootstrap address
   * and request/fetch limits matching the broker's {@link #MAX_MESSAGE_BYTES}.
   */
  public Properties clientProperties() {
    Properties p = clientProperties(bootstrapServers);
    p.putAll(securityProperties());
    return p;
  }

  /**
   * Only the security settings clients need ({@code security.protocol}, {@code sasl.*}); empty
   * without SASL. What a {@code COMPACTOR_KAFKA_PROPERTIES_FILE} for this node holds.
   */
  public Properties securityProperties() {
    Properties p = new Properties();
    if (saslPassword != null) {
      p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
      p.put(SaslConfigs.SASL_MECHANISM, "PLAIN");
      p.put(SaslConfigs.SASL_JAAS_CONFIG, plainLogin(saslPassword, false));
    }
    return p;
  }

  private static String plainLogin(String password, boolean broker) {
    return "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
        + SASL_USER
        + "\" password=\""
        + password
        + "\""
        + (broker ? " user_" + SASL_USER + "=\"" + password + "\"" : "")
        + ";";
  }

  /** Client settings for any cluster whose brokers use {@link #MAX_MESSAGE_BYTES}. */
  public static Properties clientProperties(String bootstrapServers) {
    Properties p = new Properties();
    p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(MAX_MESSAGE_BYTES));
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, String.valueOf(MAX_MESSAGE_BYTES));
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, String.valueOf(MAX_MESSAGE_BYTES));
    return p;
  }

  /** Shuts the node down and waits until its threads, sockets and files are released. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    long t0 = System.nanoTime();
    shutdownQuietly(server);
    log.info(
        "Embedded Kafka at {} stopped in {} ms",
        bootstrapServers,
        (System.nanoTime() - t0) / 1_000_000);
  }

  private void awaitReady() {
    Properties p = clientProperties();
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
    try (Admin admin = Admin.create(p)) {
      int nodes = admin.describeCluster().nodes().get().size();
      if (nodes != 1) {
        throw new IllegalStateException("expected 1 broker registered, found " + nodes);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      close();
      throw new IllegalStateException("interrupted while waiting for Kafka", e);
    } catch (Exception e) {
      close();
      throw new IllegalStateException("Kafka did not become ready at " + bootstrapServers, e);
    }
  }

  private static Map<String, String> brokerProperties(
      Path logDir, int brokerPort, int ctrlPort, String saslPassword) {
    Map<String, String> p = new HashMap<>();
    String listener = saslPassword == null ? BROKER_LISTENER : SASL_LISTENER;
    p.put("process.roles", "broker,controller");
    p.put("node.id", String.valueOf(NODE_ID));
    p.put("controller.quorum.voters", NODE_ID + "@127.0.0.1:" + ctrlPort);
    p.put("controller.listener.names", CONTROLLER_LISTENER);
    p.put("inter.broker.listener.name", listener);
    p.put(
        "listeners",
        listener
            + "://127.0.0.1:"
            + brokerPort
            + ","
            + CONTROLLER_LISTENER
            + "://127.0.0.1:"
            + ctrlPort);
    p.put("advertised.listeners", listener + "://127.0.0.1:" + brokerPort);
    p.put(
        "listener.security.protocol.map",
        listener + ":" + listener + "," + CONTROLLER_LISTENER + ":PLAINTEXT");
    if (saslPassword != null) {
      // the controller listener stays PLAINTEXT: only this JVM's broker half talks to it
      p.put("sasl.enabled.mechanisms", "PLAIN");
      p.put("sasl.mechanism.inter.broker.protocol", "PLAIN");
      p.put(
          "listener.name."
              + SASL_LISTENER.toLowerCase(java.util.Locale.ROOT)
              + ".plain.sasl.jaas.config",
          plainLogin(saslPassword, true));
    }
    p.put("log.dirs", logDir.toString());
    p.put("metadata.log.dir", logDir.toString());
    // One node: every internal topic and default must fit on it.
    p.put("default.replication.factor", "1");
    p.put("min.insync.replicas", "1");
    p.put("offsets.topic.replication.factor", "1");
    p.put("transaction.state.log.replication.factor", "1");
    p.put("transaction.state.log.min.isr", "1");
    p.put("share.coordinator.state.topic.replication.factor", "1");
    p.put("share.coordinator.state.topic.min.isr", "1");
    // Fewer internal partitions: creating 50 of each costs seconds on a 2-core machine.
    p.put("offsets.topic.num.partitions", "4");
    p.put("transaction.state.log.num.partitions", "4");
    p.put("share.coordinator.state.topic.num.partitions", "1");
    p.put("group.initial.rebalance.delay.ms", "0");
    p.put("message.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));
    p.put("replica.fetch.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));
    p.put("replica.fetch.response.max.bytes", String.valueOf(MAX_MESSAGE_BYTES));
    p.put("socket.request.max.bytes", String.valueOf(4 * MAX_MESSAGE_BYTES));
    // Small thread pools and cleaner buffer: this node shares a laptop or CI runner.
    p.put("num.network.threads", "2");
    p.put("num.io.threads", "2");
    p.put("background.threads", "2");
    p.put("num.recovery.threads.per.data.dir", "1");
    p.put("log.cleaner.threads", "1");
    p.put("log.cleaner.dedupe.buffer.size", String.valueOf(8 * 1024 * 1024));
    p.put("controlled.shutdown.enable", "true");
    return p;
  }

  private static void format(Path logDir) {
    // A formatted directory is reused as is (same cluster id), so a restarted node keeps its
    // topics and offsets; a fresh one gets a new cluster id.
    if (Files.exists(logDir.resolve("meta.properties"))) {
      return;
    }
    Formatter formatter =
        new Formatter()
            .setPrintStream(
                new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8))
            .setNodeId(NODE_ID)
            .setClusterId(Uuid.randomUuid().toString())
            .setDirectories(List.of(logDir.toString()))
            .setMetadataLogDirectory(logDir.toString())
            .setControllerListenerName(CONTROLLER_LISTENER)
            .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
            .setIgnoreFormatted(true);
    try {
      formatter.run();
    } catch (Exception e) {
      throw new IllegalStateException("could not format Kafka storage in " + logDir, e);
    }
  }

  private static void shutdownQuietly(KafkaRaftServer server) {
    try {
      server.shutdown();
      server.awaitShutdown();
    } catch (RuntimeException e) {
      log.warn("Kafka shutdown reported an error: {}", e.toString());
    }
  }

  private static boolean causedByBind(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof BindException) {
        return true;
      }
    }
    return false;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    }
  }
}
