package dev.compactor.services.orchestrator;

import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobSubmitted;
import dev.compactor.runtime.KafkaClientProperties;
import dev.compactor.runtime.SourcePolicy;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The orchestrator process: turns submitted jobs into a sequence of stage requests, one step at a
 * time, takes submissions and answers "where is my job?" over HTTP. Runs {@link JobTopology} with
 * exactly-once processing, so a crash never requests a step twice or loses a transition; the job
 * state is rebuilt from its changelog on any instance that takes the partition over.
 *
 * <p>Configured from {@code COMPACTOR_*} environment variables ({@link OrchestratorConfig}).
 */
public final class OrchestratorService implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(OrchestratorService.class);

  private final SchemaRegistryClient registry;
  private final JobHttpServer http;
  private final KafkaStreams streams;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final KafkaProducer<String, JobSubmitted> producer;
  private final KafkaProducer<String, JobCancelRequested> cancels;

  private OrchestratorService(OrchestratorConfig config, SchemaRegistryClient registry)
      throws IOException {
    this.registry = registry;
    if (config.getBoolean(OrchestratorConfig.CREATE_TOPICS)) {
      createMissingTopics(config);
    }
    StreamsBuilder builder = new StreamsBuilder();
    SourcePolicy sources =
        SourcePolicy.parse(
            config.get(OrchestratorConfig.SOURCE_FILE_ROOTS),
            config.get(OrchestratorConfig.SOURCE_BUCKETS));
    JobTopology.build(
        builder,
        registry,
        config.getInt(OrchestratorConfig.MAX_ATTEMPTS),
        config.recipeLimits(),
        sources);
    StreamsQueries queries = new StreamsQueries();
    this.producer = userProducer(config, registry, Topics.JOBS_SUBMITTED, "-submit");
    this.cancels = userProducer(config, registry, Topics.JOBS_CANCEL, "-cancel");
    this.http =
        new JobHttpServer(
            queries,
            JobSubmitter.of(
                job ->
                    producer
                        .send(
                            new ProducerRecord<>(Topics.JOBS_SUBMITTED.name(), job.getJobId(), job))
                        .get(30, TimeUnit.SECONDS),
                c ->
                    cancels
                        .send(new ProducerRecord<>(Topics.JOBS_CANCEL.name(), c.getJobId(), c))
                        .get(30, TimeUnit.SECONDS)),
            new InetSocketAddress(
                config.get(OrchestratorConfig.HTTP_BIND),
                config.getInt(OrchestratorConfig.HTTP_PORT)),
            config.get(OrchestratorConfig.API_TOKEN),
            sources);
    HostInfo self = new HostInfo(config.get(OrchestratorConfig.ADVERTISED_HOST), http.port());
    this.streams = new KafkaStreams(builder.build(), streamsProperties(config, self));
    queries.bind(streams, self);
    streams.setUncaughtExceptionHandler(
        e -> {
          LOG.error("orchestrator stream thread died; shutting down", e);
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    streams.setStateListener(
        (now, before) -> {
          LOG.info("orchestrator streams {} -> {}", before, now);
          if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
            stopped.countDown();
          }
        });
    streams.start();
  }

  /** Starts an orchestrator with its own REST schema-registry client. */
  public static OrchestratorService start(OrchestratorConfig config) throws IOException {
    return start(
        config,
        new RestSchemaRegistryClient(
            config.get(OrchestratorConfig.SCHEMA_REGISTRY_URL),
            config.get(OrchestratorConfig.SCHEMA_REGISTRY_USER_INFO)));
  }

  /** Starts an orchestrator using {@code registry} for the Avro serdes. */
  public static OrchestratorService start(OrchestratorConfig config, SchemaRegistryClient registry)
      throws IOException {
    return new OrchestratorService(config, registry);
  }

  public static void main(String[] args) throws Exception {
    OrchestratorService service = start(OrchestratorConfig.fromEnvironment());
    Runtime.getRuntime().addShutdownHook(new Thread(service::close, "orchestrator-shutdown"));
    service.stopped.await();
    service.close();
    // ERROR means the topology failed; a non-zero exit lets the container runtime restart it
    System.exit(service.state() == KafkaStreams.State.ERROR ? 1 : 0);
  }

  /** The port the HTTP API is bound to. */
  public int httpPort() {
    return http.port();
  }

  public KafkaStreams.State state() {
    return streams.state();
  }

  static Properties streamsProperties(OrchestratorConfig config, HostInfo self) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, config.get(OrchestratorConfig.APPLICATION_ID));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(OrchestratorConfig.KAFKA_BOOTSTRAP));
    p.put(StreamsConfig.STATE_DIR_CONFIG, config.get(OrchestratorConfig.STATE_DIR));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(
        StreamsConfig.REPLICATION_FACTOR_CONFIG,
        config.getInt(OrchestratorConfig.REPLICATION_FACTOR));
    p.put(StreamsConfig.APPLICATION_SERVER_CONFIG, self.host() + ":" + self.port());
    // an undecodable record goes to the dead-letter topic instead of stopping every job
    p.put(
        StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG,
        LogAndContinueExceptionHandler.class.getName());
    p.put(StreamsConfig.ERRORS_DEAD_LETTER_QUEUE_TOPIC_NAME_CONFIG, Topics.DEADLETTER.name());
    return kafkaExtras(config, p);
  }

  /**
   * A producer of users' requests (POST and DELETE /jobs): idempotent, waits for every in-sync
   * replica.
   */
  private static <V> KafkaProducer<String, V> userProducer(
      OrchestratorConfig config,
      SchemaRegistryClient registry,
      Topic<String, V> topic,
      String clientSuffix) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(OrchestratorConfig.KAFKA_BOOTSTRAP));
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(
        ProducerConfig.CLIENT_ID_CONFIG,
        config.get(OrchestratorConfig.APPLICATION_ID) + clientSuffix);
    kafkaExtras(config, p);
    return new KafkaProducer<>(
        p, topic.keySerde().serializer(), topic.valueSerde(registry).serializer());
  }

  private static void createMissingTopics(OrchestratorConfig config) {
    Properties p = new Properties();
    p.put(
        AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(OrchestratorConfig.KAFKA_BOOTSTRAP));
    short rf = (short) config.getInt(OrchestratorConfig.REPLICATION_FACTOR);
    try (Admin admin = Admin.create(kafkaExtras(config, p))) {
      Set<String> existing = admin.listTopics().names().get();
      List<NewTopic> missing =
          Topics.all().stream()
              .filter(t -> !existing.contains(t.name()))
              .map((Topic<String, ?> t) -> t.newTopic(rf))
              .toList();
      if (missing.isEmpty()) {
        return;
      }
      admin.createTopics(missing).values().forEach((name, f) -> awaitCreated(name, f));
      LOG.info("created topics {}", missing.stream().map(NewTopic::name).toList());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while creating topics", e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("cannot list topics: " + e.getCause(), e.getCause());
    }
  }

  /** Adds the COMPACTOR_KAFKA_PROPERTIES_FILE pass-through (SASL, TLS) to {@code p}. */
  static Properties kafkaExtras(OrchestratorConfig config, Properties p) {
    return KafkaClientProperties.apply(
        p, KafkaClientProperties.load(config.get(OrchestratorConfig.KAFKA_PROPERTIES_FILE)));
  }

  private static void awaitCreated(String name, org.apache.kafka.common.KafkaFuture<Void> f) {
    try {
      f.get();
    } catch (ExecutionException e) {
      if (!(e.getCause() instanceof TopicExistsException)) {
        throw new IllegalStateException("cannot create topic " + name + ": " + e.getCause(), e);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while creating " + name, e);
    }
  }

  @Override
  public void close() {
    http.close();
    producer.close(Duration.ofSeconds(10));
    cancels.close(Duration.ofSeconds(10));
    // leaving the group hands the partitions over now, not after the session timeout
    streams.close(
        CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
            .withTimeout(Duration.ofSeconds(30)));
    registry.close();
    stopped.countDown();
  }

  /** Interactive queries against the running streams instance. */
  private static final class StreamsQueries implements JobQueries {
    private volatile KafkaStreams streams;
    private volatile HostInfo self;

    void bind(KafkaStreams streams, HostInfo self) {
      this.streams = streams;
      this.self = self;
    }

    private ReadOnlyKeyValueStore<String, JobRecord> store() {
      return streams.store(
          StoreQueryParameters.fromNameAndType(
              JobTopology.STORE, QueryableStoreTypes.<String, JobRecord>keyValueStore()));
    }

    @Override
    public Optional<JobRecord> job(String jobId) {
      return Optional.ofNullable(store().get(jobId));
    }

    @Override
    public Optional<String> ownerUrl(String jobId) {
      KeyQueryMetadata m =
          streams.queryMetadataForKey(JobTopology.STORE, jobId, Serdes.String().serializer());
      if (m == null || m.equals(KeyQueryMetadata.NOT_AVAILABLE) || m.activeHost().equals(self)) {
        return Optional.empty();
      }
      return Optional.of("http://" + m.activeHost().host() + ":" + m.activeHost().port());
    }

    @Override
    public List<JobRecord> jobs() {
      return JobQueries.readAll(store());
    }

    @Override
    public Health health() {
      KafkaStreams s = streams;
      if (s == null) {
        return new Health(false, "STARTING");
      }
      KafkaStreams.State state = s.state();
      return new Health(state.isRunningOrRebalancing(), state.name());
    }
  }
}
