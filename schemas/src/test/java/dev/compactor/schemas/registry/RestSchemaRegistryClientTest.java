package dev.compactor.schemas.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.compactor.events.JobStatus;
import dev.compactor.schemas.CompatibilityLevel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Checks the exact HTTP requests the client sends (method, path, headers, body) against Confluent's
 * published REST API, and how it reads answers and errors, using a scripted HTTP server.
 */
class RestSchemaRegistryClientTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Schema SCHEMA = JobStatus.getClassSchema();

  /** A request as the server saw it. */
  record Seen(String method, String path, Map<String, List<String>> headers, String body) {
    String header(String name) {
      List<String> values = headers.get(name);
      return values == null ? null : values.get(0);
    }
  }

  private HttpServer server;
  private final List<Seen> seen = new ArrayList<>();
  private final Deque<Object[]> answers = new ArrayDeque<>();
  private String url;

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", this::handle);
    server.start();
    url = "http://127.0.0.1:" + server.getAddress().getPort();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private synchronized void handle(HttpExchange exchange) throws IOException {
    String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
    String path = exchange.getRequestURI().getRawPath();
    String query = exchange.getRequestURI().getRawQuery();
    seen.add(
        new Seen(
            exchange.getRequestMethod(),
            query == null ? path : path + "?" + query,
            Map.copyOf(exchange.getRequestHeaders()),
            body));
    Object[] answer = answers.isEmpty() ? new Object[] {500, "{}"} : answers.poll();
    byte[] bytes = ((String) answer[1]).getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().add("Content-Type", "application/vnd.schemaregistry.v1+json");
    exchange.sendResponseHeaders((Integer) answer[0], bytes.length);
    exchange.getResponseBody().write(bytes);
    exchange.close();
  }

  private void answer(int status, String json) {
    answers.add(new Object[] {status, json});
  }

  private static String quoted(Schema schema) throws IOException {
    return JSON.writeValueAsString(schema.toString());
  }

  @Test
  void registerPostsTheSchemaAsAJsonStringAndCachesTheId() throws IOException {
    answer(200, "{\"id\":7}");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);

    assertEquals(7, client.register("compactor.jobs.status-value", SCHEMA));
    assertEquals(7, client.register("compactor.jobs.status-value", SCHEMA));
    assertEquals(SCHEMA, client.getById(7), "registered schema is known by id without a request");

    assertEquals(1, seen.size(), "second register and getById answered from the cache");
    Seen request = seen.get(0);
    assertEquals("POST", request.method());
    assertEquals("/subjects/compactor.jobs.status-value/versions", request.path());
    assertEquals("application/vnd.schemaregistry.v1+json", request.header("Content-type"));
    assertTrue(request.header("Accept").startsWith("application/vnd.schemaregistry.v1+json"));
    JsonNode body = JSON.readTree(request.body());
    assertEquals(SCHEMA, new Schema.Parser().parse(body.get("schema").asText()));
    assertFalse(body.has("schemaType"), "absent schemaType means AVRO for every registry version");
    assertNull(request.header("Authorization"));
  }

  @Test
  void getByIdParsesTheSchemaAndCachesIt() throws IOException {
    answer(200, "{\"schema\":" + quoted(SCHEMA) + "}");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);
    assertEquals(SCHEMA, client.getById(3));
    assertEquals(SCHEMA, client.getById(3));
    assertEquals(1, seen.size());
    assertEquals("GET /schemas/ids/3", seen.get(0).method() + " " + seen.get(0).path());
  }

  @Test
  void latestVersionLookupAndVersions() throws IOException {
    String meta =
        "{\"subject\":\"s-value\",\"id\":4,\"version\":2,\"schema\":" + quoted(SCHEMA) + "}";
    answer(200, meta);
    answer(200, meta);
    answer(200, meta);
    answer(200, "[1,2]");
    answer(200, "[\"a-value\",\"s-value\"]");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);

    assertEquals(new SchemaMetadata("s-value", 4, 2, SCHEMA), client.latest("s-value"));
    assertEquals(new SchemaMetadata("s-value", 4, 2, SCHEMA), client.version("s-value", 2));
    assertEquals(new SchemaMetadata("s-value", 4, 2, SCHEMA), client.lookup("s-value", SCHEMA));
    assertEquals(List.of(1, 2), client.versions("s-value"));
    assertEquals(List.of("a-value", "s-value"), client.subjects());

    assertEquals(
        List.of(
            "GET /subjects/s-value/versions/latest",
            "GET /subjects/s-value/versions/2",
            "POST /subjects/s-value",
            "GET /subjects/s-value/versions",
            "GET /subjects"),
        seen.stream().map(s -> s.method() + " " + s.path()).toList());
    assertEquals(SCHEMA.toString(), JSON.readTree(seen.get(2).body()).get("schema").asText());
  }

  @Test
  void compatibilityTestAndConfig() {
    answer(200, "{\"is_compatible\":false}");
    answer(200, "{\"compatibilityLevel\":\"FULL\"}");
    answer(200, "{\"compatibilityLevel\":\"BACKWARD\"}");
    answer(200, "{\"compatibility\":\"NONE\"}");
    answer(200, "{\"compatibility\":\"FORWARD\"}");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);

    assertFalse(client.testCompatibility("s-value", SCHEMA));
    assertEquals(CompatibilityLevel.FULL, client.compatibility("s-value"));
    assertEquals(CompatibilityLevel.BACKWARD, client.compatibility(null));
    assertEquals(
        CompatibilityLevel.NONE, client.setCompatibility("s-value", CompatibilityLevel.NONE));
    assertEquals(
        CompatibilityLevel.FORWARD, client.setCompatibility(null, CompatibilityLevel.FORWARD));

    assertEquals(
        List.of(
            "POST /compatibility/subjects/s-value/versions/latest",
            "GET /config/s-value?defaultToGlobal=true",
            "GET /config",
            "PUT /config/s-value",
            "PUT /config"),
        seen.stream().map(s -> s.method() + " " + s.path()).toList());
    assertEquals("{\"compatibility\":\"NONE\"}", seen.get(3).body());
  }

  @Test
  void subjectLevelFallsBackToGlobalOnRegistriesWithoutDefaultToGlobal() {
    answer(
        404,
        "{\"error_code\":40408,\"message\":\"Subject 's' does not have subject-level"
            + " compatibility configured\"}");
    answer(200, "{\"compatibilityLevel\":\"FULL_TRANSITIVE\"}");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);
    assertEquals(CompatibilityLevel.FULL_TRANSITIVE, client.compatibility("s"));
    assertEquals("GET /config", seen.get(1).method() + " " + seen.get(1).path());
  }

  @Test
  void errorsBecomeTypedExceptions() {
    answer(404, "{\"error_code\":40401,\"message\":\"Subject 'nope' not found.\"}");
    answer(409, "{\"error_code\":409,\"message\":\"Schema being registered is incompatible\"}");
    answer(502, "<html>bad gateway</html>");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url);

    SchemaRegistryException notFound =
        assertThrows(SchemaRegistryException.class, () -> client.latest("nope"));
    assertEquals(404, notFound.httpStatus());
    assertEquals(SchemaRegistryException.SUBJECT_NOT_FOUND, notFound.errorCode());
    assertTrue(
        notFound.getMessage().startsWith("Subject 'nope' not found."), notFound.getMessage());
    assertTrue(notFound.isNotFound());

    SchemaRegistryException incompatible =
        assertThrows(SchemaRegistryException.class, () -> client.register("s", SCHEMA));
    assertEquals(SchemaRegistryException.INCOMPATIBLE_SCHEMA, incompatible.errorCode());

    SchemaRegistryException gateway =
        assertThrows(SchemaRegistryException.class, () -> client.getById(1));
    assertEquals(502, gateway.httpStatus());
    assertTrue(gateway.getMessage().contains("<html>bad gateway</html>"), gateway.getMessage());
  }

  @Test
  void subjectsAreUrlEncodedAndBasicAuthIsSent() {
    answer(200, "[3]");
    RestSchemaRegistryClient client = new RestSchemaRegistryClient(url + "/", "alice:s3cret");
    client.versions("odd subject/é");
    assertEquals("/subjects/odd%20subject%2F%C3%A9/versions", seen.get(0).path());
    assertEquals("Basic YWxpY2U6czNjcmV0", seen.get(0).header("Authorization"));
  }

  @Test
  void fallsBackToTheNextUrlWhenOneIsUnreachable() {
    answer(200, "[]");
    RestSchemaRegistryClient client =
        RestSchemaRegistryClient.fromConfig(
            Map.of(RestSchemaRegistryClient.URL_CONFIG, "http://127.0.0.1:1," + url));
    assertEquals(List.of(), client.subjects());
    assertEquals(1, seen.size());
  }

  @Test
  void unreachableRegistryIsReportedAsSuch() {
    RestSchemaRegistryClient client = new RestSchemaRegistryClient("http://127.0.0.1:1");
    SchemaRegistryException e = assertThrows(SchemaRegistryException.class, client::subjects);
    assertEquals(SchemaRegistryException.UNREACHABLE, e.errorCode());
    assertTrue(e.getMessage().contains("unreachable"), e.getMessage());
  }
}
