package dev.compactor.infra.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.events.JobState;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.schemas.Topics;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.avro.Schema;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An independent check of API compatibility: Confluent's official Python client (Debian's
 * python3-confluent-kafka) registers, fetches, looks up and tests schemas against our server and
 * gets Confluent's error codes; when fastavro is installed too, Confluent's Python Avro serde and
 * our Java serde read each other's bytes. Skipped when {@code /usr/bin/python3} cannot import the
 * client.
 */
class ConfluentPythonClientIT {

  private static final Path PYTHON = Path.of("/usr/bin/python3");
  private static final ObjectMapper JSON = new ObjectMapper();

  @Test
  void confluentsPythonClientWorksAgainstOurServer(@TempDir Path dir) throws Exception {
    assumeTrue(
        run(List.of(PYTHON.toString(), "-c", "import confluent_kafka.schema_registry")) == 0,
        "python3-confluent-kafka not installed (apt-get install python3-confluent-kafka"
            + " python3-requests)");
    Schema v1 = JobSubmitted.getClassSchema();
    String compatible =
        withField(v1, "{\"name\":\"p\",\"type\":[\"null\",\"int\"],\"default\":null}");
    String incompatible = withField(v1, "{\"name\":\"p\",\"type\":\"int\"}");
    JobStatus status =
        JobStatus.newBuilder()
            .setJobId("written-by-java")
            .setState(JobState.SUCCEEDED)
            .setStep(4)
            .setTotalSteps(5)
            .setStage(null)
            .setMessage("done ✓")
            .setUpdatedAtMs(1_700_000_000_123L)
            .build();

    RegistryAuth auth =
        RegistryAuth.builder().user("py-admin", "py-pass", RegistryAuth.Role.ADMIN).build();
    try (SchemaRegistryServer server =
        SchemaRegistryServer.start(new InMemorySchemaStore(), "127.0.0.1", 0, auth)) {
      RestSchemaRegistryClient java =
          new RestSchemaRegistryClient(server.url(), "py-admin:py-pass");
      byte[] javaBytes =
          Topics.JOBS_STATUS
              .valueSerde(java)
              .serializer()
              .serialize(Topics.JOBS_STATUS.name(), status);
      Path input = dir.resolve("input.json");
      Path output = dir.resolve("output.json");
      Files.writeString(
          input,
          JSON.createObjectNode()
              .put("url", server.url())
              .put("user_info", "py-admin:py-pass")
              .put("subject", "py-check-value")
              .put("schema", v1.toString())
              .put("compatible", compatible)
              .put("incompatible", incompatible)
              .put("topic", Topics.JOBS_STATUS.name())
              .put("status_schema", JobStatus.getClassSchema().toString())
              .put("java_bytes_hex", HexFormat.of().formatHex(javaBytes))
              .toString());
      Path script = dir.resolve("confluent_client_check.py");
      try (InputStream in = getClass().getResourceAsStream("/registry/confluent_client_check.py")) {
        Files.copy(in, script);
      }
      assertEquals(
          0,
          run(List.of(PYTHON.toString(), script.toString(), input.toString(), output.toString())));
      JsonNode out = JSON.readTree(output.toFile());

      int id = out.get("registered_id").asInt();
      assertEquals(id, out.get("registered_again_id").asInt());
      assertEquals(v1, new Schema.Parser().parse(out.get("fetched_schema").toString()));
      assertEquals(id, out.at("/latest/id").asInt());
      assertEquals(1, out.at("/latest/version").asInt());
      assertEquals("py-check-value", out.at("/latest/subject").asText());
      assertEquals(id, out.at("/lookup/id").asInt());
      assertEquals("[1]", out.get("versions").toString());
      assertTrue(out.get("subjects").toString().contains("py-check-value"), out::toString);
      assertTrue(out.get("compatible").asBoolean());
      assertEquals(false, out.get("incompatible").asBoolean());
      assertEquals(409, out.get("register_incompatible_error").asInt());
      assertEquals(40403, out.get("unknown_id_error").asInt());
      assertEquals(40401, out.get("unknown_subject_error").asInt());
      assertEquals(401, out.get("anonymous_error").asInt(), "no credentials, no answer");
      assertEquals("BACKWARD", out.get("global_compatibility").asText());
      assertEquals("FULL", out.get("subject_compatibility").asText());
      assertEquals("FULL", java.compatibility("py-check-value").name());

      boolean fastavro = run(List.of(PYTHON.toString(), "-c", "import fastavro")) == 0;
      assertEquals(
          fastavro ? "checked" : "skipped",
          out.get("wire_format").asText().split(":")[0],
          out::toString);
      if (fastavro) {
        JsonNode read = out.get("python_read_java");
        assertEquals("written-by-java", read.get("jobId").asText());
        assertEquals("SUCCEEDED", read.get("state").asText());
        assertEquals("done ✓", read.get("message").asText());
        assertEquals(1_700_000_000_123L, read.get("updatedAtMs").asLong());
        assertTrue(read.get("stage").isNull());

        byte[] pythonBytes = HexFormat.of().parseHex(out.get("python_bytes_hex").asText());
        JobStatus fromPython =
            Topics.JOBS_STATUS
                .valueSerde(new RestSchemaRegistryClient(server.url(), "py-admin:py-pass"))
                .deserializer()
                .deserialize(Topics.JOBS_STATUS.name(), pythonBytes);
        assertEquals("written-by-python", fromPython.getJobId());
        assertEquals(JobState.RUNNING, fromPython.getState());
        assertEquals(status.getMessage(), fromPython.getMessage());
      }
    }
  }

  private static String withField(Schema base, String field) {
    String json = base.toString();
    return json.substring(0, json.lastIndexOf(']')) + "," + field + "]}";
  }

  private static int run(List<String> command) throws IOException, InterruptedException {
    if (!Files.isExecutable(PYTHON)) {
      return -1;
    }
    Process process = new ProcessBuilder(command).inheritIO().start();
    if (!process.waitFor(120, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("python did not finish in 120 s: " + command);
    }
    return process.exitValue();
  }
}
