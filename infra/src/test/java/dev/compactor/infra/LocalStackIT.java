package dev.compactor.infra;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.StageRequested;
import dev.compactor.schemas.Topic;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import io.minio.BucketExistsArgs;
import io.minio.MinioClient;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStackIT {
  @TempDir Path dir;

  @Test
  void startsWithEveryTopicBucketAndRegistryAndRestartsWithoutLeaks() throws Exception {
    long fdsBefore = openFilesUnder(dir);
    int schemaId;
    int brokerPort;
    int s3Port;
    String registryUrl;
    String secret;
    try (LocalStack stack = LocalStack.start(dir)) {
      checkTopics(stack);
      checkBuckets(stack);
      try (RestSchemaRegistryClient registry =
          new RestSchemaRegistryClient(stack.schemaRegistryUrl(), stack.schemaRegistryUserInfo())) {
        schemaId =
            registry.register(
                Topics.stageRequested("prune").name() + "-value", StageRequested.getClassSchema());
      }
      brokerPort = port(stack.bootstrapServers());
      s3Port = stack.s3Endpoint().getPort();
      registryUrl = stack.schemaRegistryUrl();
      secret = stack.s3SecretKey();
      assertNotEquals("compactor-secret-key", secret);
      try (RestSchemaRegistryClient anonymous =
          new RestSchemaRegistryClient(stack.schemaRegistryUrl())) {
        assertEquals(
            401,
            assertThrows(
                    dev.compactor.schemas.registry.SchemaRegistryException.class,
                    anonymous::subjects)
                .httpStatus(),
            "the registry needs credentials");
      }
      assertUnauthenticatedKafkaIsRefused(stack.bootstrapServers());
    }
    assertEquals(fdsBefore, openFilesUnder(dir), "files under the data dir left open");
    assertTrue(canBind(brokerPort), "Kafka port " + brokerPort + " still bound");
    assertTrue(canBind(s3Port), "S3 port " + s3Port + " still bound");

    // Second start on the same directory: state survives, schema ids are stable.
    try (LocalStack stack = LocalStack.start(dir)) {
      checkTopics(stack);
      checkBuckets(stack);
      try (RestSchemaRegistryClient registry =
          new RestSchemaRegistryClient(stack.schemaRegistryUrl(), stack.schemaRegistryUserInfo())) {
        assertEquals(StageRequested.getClassSchema(), registry.getById(schemaId), "schema id kept");
      }
      assertTrue(stack.startupTime().toMillis() > 0);
      assertEquals(brokerPort, port(stack.bootstrapServers()), "Kafka keeps its port");
      assertEquals(s3Port, stack.s3Endpoint().getPort(), "S3 keeps its port");
      assertEquals(registryUrl, stack.schemaRegistryUrl(), "the registry keeps its port");
      assertEquals(secret, stack.s3SecretKey(), "the S3 secret is reused");
    }
    assertEquals(fdsBefore, openFilesUnder(dir), "files under the data dir left open");

    // A recorded port taken by another process is a clear error, not a silent move.
    try (java.net.ServerSocket squatter =
        new java.net.ServerSocket(s3Port, 1, java.net.InetAddress.getLoopbackAddress())) {
      IllegalStateException e =
          assertThrows(IllegalStateException.class, () -> LocalStack.start(dir));
      assertTrue(e.getMessage().contains(LocalStack.PORTS_FILE), e.getMessage());
    }
  }

  private static void assertUnauthenticatedKafkaIsRefused(String bootstrap) {
    java.util.Properties p = new java.util.Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("default.api.timeout.ms", "3000");
    p.put("request.timeout.ms", "3000");
    try (Admin admin = Admin.create(p)) {
      assertThrows(
          java.util.concurrent.ExecutionException.class,
          () -> admin.listTopics().names().get(),
          "a client without SASL credentials gets nothing");
    }
  }

  private static void checkTopics(LocalStack stack) throws Exception {
    try (Admin admin = Admin.create(stack.kafka().clientProperties())) {
      Set<String> names = admin.listTopics().names().get();
      for (Topic<String, ?> t : Topics.all()) {
        assertTrue(names.contains(t.name()), "missing topic " + t.name());
      }
      Map<String, TopicDescription> described =
          admin
              .describeTopics(List.of(Topics.JOBS_STATUS.name(), Topics.DEADLETTER.name()))
              .allTopicNames()
              .get();
      assertEquals(
          Topics.JOBS_STATUS.partitions(),
          described.get(Topics.JOBS_STATUS.name()).partitions().size());
      ConfigResource status =
          new ConfigResource(ConfigResource.Type.TOPIC, Topics.JOBS_STATUS.name());
      Config config = admin.describeConfigs(List.of(status)).all().get().get(status);
      assertEquals("compact", config.get(TopicConfig.CLEANUP_POLICY_CONFIG).value());
    }
  }

  private static void checkBuckets(LocalStack stack) throws Exception {
    MinioClient client =
        MinioClient.builder()
            .endpoint(stack.s3Endpoint().toString())
            .credentials(stack.s3AccessKey(), stack.s3SecretKey())
            .region(stack.s3Region())
            .build();
    for (String b : List.of(LocalStack.ARTIFACTS_BUCKET, LocalStack.DATA_BUCKET)) {
      assertTrue(client.bucketExists(BucketExistsArgs.builder().bucket(b).build()), b);
    }
  }

  private static int port(String hostPort) {
    return URI.create("tcp://" + hostPort).getPort();
  }

  private static boolean canBind(int port) {
    try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** Open file descriptors of this JVM that point under {@code dir} (Linux /proc). */
  private static long openFilesUnder(Path dir) throws IOException {
    Path fds = Path.of("/proc/self/fd");
    if (!Files.isDirectory(fds)) {
      return 0;
    }
    String prefix = dir.toRealPath().toString();
    try (Stream<Path> list = Files.list(fds)) {
      return list.filter(
              fd -> {
                try {
                  return Files.readSymbolicLink(fd).toString().startsWith(prefix);
                } catch (IOException e) {
                  return false;
                }
              })
          .count();
    }
  }
}
