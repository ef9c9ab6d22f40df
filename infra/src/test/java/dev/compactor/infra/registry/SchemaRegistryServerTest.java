package dev.compactor.infra.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.events.JobStatus;
import dev.compactor.events.JobSubmitted;
import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaMetadata;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.avro.Schema;
import org.apache.avro.SchemaBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The REST semantics of the registry server (status codes, error codes, idempotent registration,
 * compatibility enforcement, config) over HTTP, with the state in memory.
 */
class SchemaRegistryServerTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Schema V1 = JobSubmitted.getClassSchema();
  private static final Schema V2_OPTIONAL =
      withField(V1, "{\"name\":\"priority\",\"type\":[\"null\",\"int\"],\"default\":null}");
  private static final Schema V2_REQUIRED =
      withField(V1, "{\"name\":\"priority\",\"type\":\"int\"}");

  private final InMemorySchemaStore store = new InMemorySchemaStore();
  private SchemaRegistryServer server;
  private RestSchemaRegistryClient client;

  @BeforeEach
  void start() {
    server = SchemaRegistryServer.start(store);
    client = new RestSchemaRegistryClient(server.url());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  @Test
  void registeringTheSameSchemaTwiceGivesTheSameIdAndOneVersion() {
    int id = client.register("jobs-value", V1);
    assertEquals(id, fresh().register("jobs-value", V1));
    assertEquals(List.of(1), client.versions("jobs-value"));
    assertEquals(V1, fresh().getById(id));
    assertEquals(new SchemaMetadata("jobs-value", id, 1, V1), fresh().latest("jobs-value"));
  }

  @Test
  void theSameSchemaUnderAnotherSubjectKeepsItsId() {
    int id = client.register("a-value", V1);
    assertEquals(id, client.register("b-value", V1));
    assertEquals(List.of("a-value", "b-value"), client.subjects());
    assertEquals(1, client.version("b-value", 1).version());
  }

  @Test
  void compatibleEvolutionAddsAVersionWithANewId() {
    int first = client.register("jobs-value", V1);
    int second = client.register("jobs-value", V2_OPTIONAL);
    assertEquals(first + 1, second);
    assertEquals(List.of(1, 2), client.versions("jobs-value"));
    assertEquals(V2_OPTIONAL, client.latest("jobs-value").schema());
    assertEquals(V1, client.version("jobs-value", 1).schema());
    assertEquals(new SchemaMetadata("jobs-value", first, 1, V1), client.lookup("jobs-value", V1));
  }

  @Test
  void incompatibleSchemaIsRefusedWith409() throws IOException {
    client.register("jobs-value", V1);
    assertFalse(client.testCompatibility("jobs-value", V2_REQUIRED));
    assertTrue(client.testCompatibility("jobs-value", V2_OPTIONAL));

    JsonNode error = call("POST", "/subjects/jobs-value/versions", body(V2_REQUIRED), 409);
    assertEquals(409, error.get("error_code").asInt());
    assertTrue(error.get("message").asText().contains("field 'priority'"), error::toString);
    assertTrue(error.get("message").asText().contains("compatibility BACKWARD"), error::toString);

    JsonNode verbose =
        call(
            "POST",
            "/compatibility/subjects/jobs-value/versions/latest?verbose=true",
            body(V2_REQUIRED),
            200);
    assertFalse(verbose.get("is_compatible").asBoolean());
    assertTrue(verbose.get("messages").get(0).asText().contains("priority"), verbose::toString);
    assertEquals(List.of(1), client.versions("jobs-value"), "refused schema left no version");
  }

  @Test
  void unparsableSchemaIs42201() throws IOException {
    JsonNode error =
        call(
            "POST",
            "/subjects/x-value/versions",
            "{\"schema\":\"{\\\"type\\\":\\\"recrd\\\"}\"}",
            422);
    assertEquals(42201, error.get("error_code").asInt());
    assertTrue(error.get("message").asText().startsWith("Invalid schema"), error::toString);

    assertEquals(
        42201,
        call("POST", "/subjects/x-value/versions", "{\"nope\":1}", 422).get("error_code").asInt());
    assertEquals(
        400, call("POST", "/subjects/x-value/versions", "not json", 400).get("error_code").asInt());
    JsonNode protobuf =
        call(
            "POST",
            "/subjects/x-value/versions",
            "{\"schema\":\"syntax = 1\",\"schemaType\":\"PROTOBUF\"}",
            422);
    assertTrue(protobuf.get("message").asText().contains("not supported yet"), protobuf::toString);
  }

  @Test
  void notFoundAnswersCarryConfluentErrorCodes() throws IOException {
    client.register("jobs-value", V1);
    assertEquals(
        40401, call("GET", "/subjects/nope/versions", null, 404).get("error_code").asInt());
    assertEquals(
        40401, call("GET", "/subjects/nope/versions/latest", null, 404).get("error_code").asInt());
    assertEquals(
        40402, call("GET", "/subjects/jobs-value/versions/7", null, 404).get("error_code").asInt());
    assertEquals(
        42202,
        call("GET", "/subjects/jobs-value/versions/abc", null, 422).get("error_code").asInt());
    assertEquals(40403, call("GET", "/schemas/ids/4242", null, 404).get("error_code").asInt());
    assertEquals(
        40403,
        call("POST", "/subjects/jobs-value", body(V2_OPTIONAL), 404).get("error_code").asInt());
    assertEquals(40401, call("POST", "/subjects/nope", body(V1), 404).get("error_code").asInt());
    assertEquals(404, call("GET", "/no/such/path", null, 404).get("error_code").asInt());
    assertEquals(405, call("DELETE", "/subjects/jobs-value", null, 405).get("error_code").asInt());

    SchemaRegistryException e =
        assertThrows(SchemaRegistryException.class, () -> client.getById(4242));
    assertEquals(SchemaRegistryException.SCHEMA_NOT_FOUND, e.errorCode());
  }

  @Test
  void rawSchemaEndpointsReturnTheSchemaItself() throws IOException {
    int id = client.register("jobs-value", V1);
    assertEquals(
        V1,
        new Schema.Parser()
            .parse(call("GET", "/schemas/ids/" + id + "/schema", null, 200).toString()));
    assertEquals(
        V1,
        new Schema.Parser()
            .parse(call("GET", "/subjects/jobs-value/versions/1/schema", null, 200).toString()));
  }

  @Test
  void compatibilityLevelsAreConfigurableGloballyAndPerSubject() throws IOException {
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility(null));
    assertEquals(40408, call("GET", "/config/jobs-value", null, 404).get("error_code").asInt());
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility("jobs-value"));

    client.register("jobs-value", V1);
    assertEquals(
        CompatibilityLevel.NONE, client.setCompatibility("jobs-value", CompatibilityLevel.NONE));
    client.register("jobs-value", V2_REQUIRED);
    assertEquals(List.of(1, 2), client.versions("jobs-value"));
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility("other-value"));

    assertEquals(
        CompatibilityLevel.FORWARD, client.setCompatibility(null, CompatibilityLevel.FORWARD));
    assertEquals(CompatibilityLevel.FORWARD, client.compatibility("other-value"));
    assertEquals(CompatibilityLevel.NONE, client.compatibility("jobs-value"));

    assertEquals(
        42203,
        call("PUT", "/config", "{\"compatibility\":\"SIDEWAYS\"}", 422).get("error_code").asInt());
  }

  @Test
  void stateAndIdsSurviveARestartFromTheStore() {
    int v1 = client.register("jobs-value", V1);
    int status = client.register("status-value", JobStatus.getClassSchema());
    client.setCompatibility("status-value", CompatibilityLevel.FULL);
    server.close();

    server = SchemaRegistryServer.start(store);
    RestSchemaRegistryClient after = new RestSchemaRegistryClient(server.url());
    assertEquals(v1, after.register("jobs-value", V1));
    assertEquals(JobStatus.getClassSchema(), after.getById(status));
    assertEquals(CompatibilityLevel.FULL, after.compatibility("status-value"));
    assertEquals(
        Math.max(v1, status) + 1, after.register("jobs-value", V2_OPTIONAL), "ids continue");
  }

  @Test
  void concurrentRegistrationsGetConsistentIds() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<Future<Integer>> same = new ArrayList<>();
      List<Future<Integer>> distinct = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        same.add(pool.submit(() -> fresh().register("shared-value", V1)));
        Schema own = SchemaBuilder.record("R" + i).fields().requiredInt("x").endRecord();
        String subject = "own-" + i + "-value";
        distinct.add(pool.submit(() -> fresh().register(subject, own)));
      }
      Set<Integer> sameIds = new HashSet<>();
      for (Future<Integer> f : same) {
        sameIds.add(f.get(60, TimeUnit.SECONDS));
      }
      Set<Integer> distinctIds = new HashSet<>();
      for (Future<Integer> f : distinct) {
        distinctIds.add(f.get(60, TimeUnit.SECONDS));
      }
      assertEquals(1, sameIds.size(), "one schema, one id");
      assertEquals(16, distinctIds.size(), "distinct schemas, distinct ids");
      assertFalse(distinctIds.contains(sameIds.iterator().next()));
      assertEquals(List.of(1), client.versions("shared-value"));
    } finally {
      pool.shutdownNow();
    }
  }

  private RestSchemaRegistryClient fresh() {
    return new RestSchemaRegistryClient(server.url());
  }

  private static String body(Schema schema) throws IOException {
    return JSON.createObjectNode().put("schema", schema.toString()).toString();
  }

  private JsonNode call(String method, String path, String body, int expectedStatus)
      throws IOException {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(server.url() + path))
            .header("Content-Type", RestSchemaRegistryClient.CONTENT_TYPE)
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body))
            .build();
    try {
      HttpResponse<String> response =
          HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
      assertEquals(expectedStatus, response.statusCode(), response::body);
      assertEquals(
          RestSchemaRegistryClient.CONTENT_TYPE,
          response.headers().firstValue("Content-Type").orElse(""));
      return JSON.readTree(response.body());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    }
  }

  private static Schema withField(Schema base, String field) {
    String json = base.toString();
    return new Schema.Parser().parse(json.substring(0, json.lastIndexOf(']')) + "," + field + "]}");
  }
}
