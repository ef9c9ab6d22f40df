package dev.compactor.cli.pipeline;

import dev.compactor.events.JobSubmitted;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Deserializer;

/**
 * What a user of a running pipeline does, over its public interfaces only: uploads a model
 * directory to S3, submits a job ({@code JobSubmitted} on Kafka) and follows the job's public
 * events (status, evaluation, model ready, stage failures) as any Kafka consumer can.
 */
public final class PipelineClient implements AutoCloseable {

  /** The topics a follower reads, in the order events of one job usually arrive. */
  public static final List<Topic<String, ? extends SpecificRecord>> FOLLOWED =
      List.of(
          Topics.JOBS_STATUS,
          Topics.STAGE_PROGRESS,
          Topics.STAGE_COMPLETED,
          Topics.STAGE_FAILED,
          Topics.MODELS_INGESTED,
          Topics.EVALUATION_COMPLETED,
          Topics.MODELS_READY);

  private final String bootstrap;
  private final SchemaRegistryClient registry;
  private final Properties kafkaExtras;

  /** A client of a backbone without authentication. */
  public PipelineClient(String bootstrap, String registryUrl) {
    this(bootstrap, registryUrl, "", new Properties());
  }

  /**
   * A client with credentials.
   *
   * @param registryUserInfo {@code user:password} for the registry; "" or null for none
   * @param kafkaExtras Kafka client settings added to every producer and consumer (SASL, TLS)
   */
  public PipelineClient(
      String bootstrap, String registryUrl, String registryUserInfo, Properties kafkaExtras) {
    this.bootstrap = bootstrap;
    this.registry = new RestSchemaRegistryClient(registryUrl, registryUserInfo);
    this.kafkaExtras = kafkaExtras;
  }

  /** Uploads every file under {@code dir} to {@code prefix} (ending in '/'); returns its URI. */
  public static String upload(BlobStore blobs, Path dir, S3Uri prefix) throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.walk(dir)) {
      files = s.filter(Files::isRegularFile).toList();
    }
    for (Path f : files) {
      blobs.putFile(prefix.resolve(dir.relativize(f).toString().replace('\\', '/')), f);
    }
    return prefix.toString();
  }

  /** Submits a job and returns its id. */
  public String submit(String modelUri, String recipeYaml, String submitter) {
    return submitAs(UUID.randomUUID().toString(), modelUri, recipeYaml, submitter);
  }

  /** Submits a job under a chosen id and returns it. */
  public String submitAs(String jobId, String modelUri, String recipeYaml, String submitter) {
    JobSubmitted job =
        JobSubmitted.newBuilder()
            .setJobId(jobId)
            .setSubmittedAtMs(System.currentTimeMillis())
            .setModelUri(modelUri)
            .setRecipeYaml(recipeYaml)
            .setSubmitter(submitter)
            .build();
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.putAll(kafkaExtras);
    Topic<String, JobSubmitted> t = Topics.JOBS_SUBMITTED;
    try (KafkaProducer<String, JobSubmitted> producer =
        new KafkaProducer<>(p, t.keySerde().serializer(), t.valueSerde(registry).serializer())) {
      producer.send(new ProducerRecord<>(t.name(), jobId, job)).get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while submitting", e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("could not submit the job: " + e.getCause(), e.getCause());
    }
    return jobId;
  }

  /** Follows the public events of the pipeline. */
  public Follower follow(boolean fromBeginning) {
    return new Follower(fromBeginning, FOLLOWED);
  }

  /** Follows the given topics. */
  public Follower follow(
      boolean fromBeginning, List<? extends Topic<String, ? extends SpecificRecord>> topics) {
    return new Follower(fromBeginning, topics);
  }

  @Override
  public void close() {
    registry.close();
  }

  /** A read_committed consumer of {@link #FOLLOWED}, positioned when it was created. */
  public final class Follower implements AutoCloseable {
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final Map<String, Deserializer<?>> values = new HashMap<>();

    private Follower(
        boolean fromBeginning, List<? extends Topic<String, ? extends SpecificRecord>> topics) {
      Properties p = new Properties();
      p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
      p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
      p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
      p.putAll(kafkaExtras);
      consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
      List<TopicPartition> parts = new ArrayList<>();
      for (Topic<String, ? extends SpecificRecord> t : topics) {
        values.put(t.name(), t.valueSerde(registry).deserializer());
        for (PartitionInfo pi : consumer.partitionsFor(t.name())) {
          parts.add(new TopicPartition(t.name(), pi.partition()));
        }
      }
      consumer.assign(parts);
      if (fromBeginning) {
        consumer.seekToBeginning(parts);
      } else {
        consumer.seekToEnd(parts);
        parts.forEach(consumer::position);
      }
    }

    /** Events of {@code jobId} (all jobs when null) that arrived within {@code timeout}. */
    public List<SpecificRecord> poll(String jobId, Duration timeout) {
      List<SpecificRecord> out = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
        String key =
            r.key() == null ? null : new String(r.key(), java.nio.charset.StandardCharsets.UTF_8);
        if (jobId != null && !jobId.equals(key)) {
          continue;
        }
        Object v = values.get(r.topic()).deserialize(r.topic(), r.value());
        if (v instanceof SpecificRecord rec) {
          out.add(rec);
        }
      }
      return out;
    }

    /**
     * Polls until an event of {@code jobId} matches {@code done}, handing every event to {@code
     * each}.
     */
    public SpecificRecord await(
        String jobId,
        Duration timeout,
        java.util.function.Consumer<SpecificRecord> each,
        Predicate<SpecificRecord> done) {
      long end = System.nanoTime() + timeout.toNanos();
      while (System.nanoTime() < end) {
        for (SpecificRecord r : poll(jobId, Duration.ofMillis(200))) {
          each.accept(r);
          if (done.test(r)) {
            return r;
          }
        }
      }
      throw new IllegalStateException(
          "job " + jobId + ": no final event within " + timeout.toSeconds() + " s");
    }

    @Override
    public void close() {
      consumer.close();
    }
  }
}
