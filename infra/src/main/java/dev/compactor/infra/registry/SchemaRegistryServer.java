package dev.compactor.infra.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.compactor.schemas.BackwardCompatibility;
import dev.compactor.schemas.CompatibilityLevel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A schema registry for the local stack that speaks the Confluent Schema Registry REST API (the
 * Avro subset Compactor and Confluent's clients use), so services, Confluent's own client libraries
 * and {@code curl} work against it exactly as against Confluent's server. State lives in a {@link
 * SchemaStore} — in production of the local stack a compacted Kafka topic ({@link
 * KafkaSchemaStore}) — and compatibility is enforced on registration (default BACKWARD).
 *
 * <p>Endpoints: {@code GET /subjects}, {@code GET|POST /subjects/{s}/versions}, {@code GET
 * /subjects/{s}/versions/{v}[/schema]}, {@code POST /subjects/{s}} (lookup), {@code GET
 * /schemas/ids/{id}[/schema]}, {@code GET /schemas/types}, {@code POST
 * /compatibility/subjects/{s}/versions/{v}}, {@code GET|PUT /config[/{s}]}. Errors are {@code
 * {"error_code": n, "message": "..."}} with Confluent's codes. Not supported yet: deletes, modes,
 * contexts, schema references and non-Avro schema types (answered with a clear error).
 */
public final class SchemaRegistryServer implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(SchemaRegistryServer.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

  private final SchemaRegistry registry;
  private final SchemaStore store;
  private final HttpServer http;
  private final ExecutorService executor;
  private final RegistryAuth auth;

  private SchemaRegistryServer(
      SchemaRegistry registry, SchemaStore store, HttpServer http, RegistryAuth auth) {
    this.registry = registry;
    this.auth = auth;
    this.store = store;
    this.http = http;
    this.executor =
        Executors.newFixedThreadPool(
            4,
            r -> {
              Thread t = new Thread(r, "schema-registry-http");
              t.setDaemon(true);
              return t;
            });
    http.setExecutor(executor);
    http.createContext("/", this::handle);
    http.start();
  }

  /** Starts a server on a free port of 127.0.0.1 over {@code store}. */
  public static SchemaRegistryServer start(SchemaStore store) {
    return start(store, "127.0.0.1", 0);
  }

  /**
   * Starts a server on {@code host:port} (port 0 = any free port) over {@code store}; closing the
   * server closes the store.
   */
  public static SchemaRegistryServer start(SchemaStore store, String host, int port) {
    return start(store, host, port, RegistryAuth.OPEN);
  }

  /** Starts a server that lets each request do only what {@code auth} grants its user. */
  public static SchemaRegistryServer start(
      SchemaStore store, String host, int port, RegistryAuth auth) {
    SchemaRegistry registry = new SchemaRegistry(store);
    try {
      HttpServer http = HttpServer.create(new InetSocketAddress(host, port), 0);
      SchemaRegistryServer server = new SchemaRegistryServer(registry, store, http, auth);
      LOG.info(
          "schema registry listening on {} with {} subjects",
          server.url(),
          registry.subjects().size());
      return server;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot listen on " + host + ":" + port, e);
    }
  }

  /** Base URL for clients, e.g. {@code http://127.0.0.1:41234}. */
  public String url() {
    InetSocketAddress address = http.getAddress();
    return "http://" + address.getHostString() + ":" + address.getPort();
  }

  /** The port the server listens on. */
  public int port() {
    return http.getAddress().getPort();
  }

  /** The registry behind the HTTP API. */
  public SchemaRegistry registry() {
    return registry;
  }

  /**
   * Runs a registry until the JVM is stopped: {@code --bootstrap-servers host:port} (required;
   * state in {@value KafkaSchemaStore#DEFAULT_TOPIC} unless {@code --topic} says otherwise), {@code
   * --host} (default 0.0.0.0) and {@code --port} (default 8081, Confluent's).
   */
  public static void main(String[] args) throws InterruptedException {
    Map<String, String> options = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        throw new IllegalArgumentException(
            "expected --option value pairs, found '" + args[i] + "'");
      }
      options.put(args[i].substring(2), args[i + 1]);
    }
    String bootstrap = options.get("bootstrap-servers");
    if (bootstrap == null) {
      throw new IllegalArgumentException(
          "usage: SchemaRegistryServer --bootstrap-servers host:port [--host h] [--port p] [--topic t]");
    }
    SchemaStore store =
        new KafkaSchemaStore(
            Map.of("bootstrap.servers", bootstrap),
            options.getOrDefault("topic", KafkaSchemaStore.DEFAULT_TOPIC),
            (short) 1);
    SchemaRegistryServer server =
        start(
            store,
            options.getOrDefault("host", "0.0.0.0"),
            Integer.parseInt(options.getOrDefault("port", "8081")));
    Runtime.getRuntime().addShutdownHook(new Thread(server::close, "schema-registry-shutdown"));
    Thread.currentThread().join();
  }

  @Override
  public void close() {
    http.stop(0);
    executor.shutdownNow();
    store.close();
  }

  /** A status and JSON body to send. */
  private record Answer(int status, JsonNode body) {
    static Answer ok(JsonNode body) {
      return new Answer(200, body);
    }
  }

  private void handle(HttpExchange exchange) throws IOException {
    String method = exchange.getRequestMethod();
    String rawPath = exchange.getRequestURI().getRawPath();
    Answer answer;
    try {
      byte[] body = exchange.getRequestBody().readAllBytes();
      List<String> path = segments(rawPath);
      RegistryAuth.Decision d =
          auth.check(exchange.getRequestHeaders().getFirst("Authorization"), needed(method, path));
      if (!d.allowed()) {
        if (d.status() == 401) {
          exchange
              .getResponseHeaders()
              .set("WWW-Authenticate", "Basic realm=\"compactor-schema-registry\"");
        }
        answer = error(d.status(), d.errorCode(), d.message());
      } else {
        answer = route(method, path, query(exchange.getRequestURI().getRawQuery()), body);
      }
    } catch (RegistryException e) {
      answer = error(e.httpStatus(), e.errorCode(), e.getMessage());
    } catch (RuntimeException e) {
      LOG.error("schema registry failed on {} {}", method, rawPath, e);
      answer = error(500, 50001, "Internal error: " + e);
    }
    if (answer.status() >= 400) {
      LOG.debug("{} {} -> {} {}", method, rawPath, answer.status(), answer.body());
    }
    byte[] bytes = JSON.writeValueAsBytes(answer.body());
    exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
    exchange.sendResponseHeaders(answer.status(), bytes.length);
    exchange.getResponseBody().write(bytes);
    exchange.close();
  }

  /**
   * The role a request needs: reads (and lookups, compatibility tests: POSTs that change nothing)
   * READ, registering a schema WRITE, everything else (config and mode changes, deletes) ADMIN.
   */
  static RegistryAuth.Role needed(String method, List<String> path) {
    if (method.equals("GET") || method.equals("HEAD")) {
      return RegistryAuth.Role.READ;
    }
    if (method.equals("POST") && !path.isEmpty()) {
      boolean lookup = path.get(0).equals("subjects") && path.size() == 2;
      if (lookup || path.get(0).equals("compatibility")) {
        return RegistryAuth.Role.READ;
      }
      if (path.get(0).equals("subjects") && path.size() == 3) {
        return RegistryAuth.Role.WRITE;
      }
    }
    return RegistryAuth.Role.ADMIN;
  }

  private Answer route(String method, List<String> path, Map<String, String> query, byte[] body) {
    int n = path.size();
    String head = n == 0 ? "" : path.get(0);
    if (n == 0) {
      return method("GET", method, () -> Answer.ok(JSON.createObjectNode()));
    }
    switch (head) {
      case "subjects":
        if (n == 1) {
          return method("GET", method, () -> Answer.ok(strings(registry.subjects())));
        }
        String subject = path.get(1);
        if (n == 2) {
          return method(
              "POST", method, () -> Answer.ok(version(registry.lookup(subject, schemaOf(body)))));
        }
        if (n == 3 && path.get(2).equals("versions")) {
          if (method.equals("POST")) {
            int id = registry.register(subject, schemaOf(body));
            return Answer.ok(JSON.createObjectNode().put("id", id));
          }
          return method("GET", method, () -> Answer.ok(ints(registry.versions(subject))));
        }
        if (n == 4 && path.get(2).equals("versions")) {
          return method(
              "GET", method, () -> Answer.ok(version(registry.version(subject, path.get(3)))));
        }
        if (n == 5 && path.get(2).equals("versions") && path.get(4).equals("schema")) {
          return method(
              "GET", method, () -> Answer.ok(raw(registry.version(subject, path.get(3)).schema())));
        }
        break;
      case "schemas":
        if (n == 2 && path.get(1).equals("types")) {
          return method("GET", method, () -> Answer.ok(strings(List.of("AVRO"))));
        }
        if (n >= 3 && n <= 4 && path.get(1).equals("ids")) {
          int id = schemaId(path.get(2));
          if (n == 3) {
            return method(
                "GET",
                method,
                () ->
                    Answer.ok(
                        JSON.createObjectNode().put("schema", registry.schemaById(id).toString())));
          }
          if (path.get(3).equals("schema")) {
            return method("GET", method, () -> Answer.ok(raw(registry.schemaById(id).toString())));
          }
        }
        break;
      case "compatibility":
        if (n == 5 && path.get(1).equals("subjects") && path.get(3).equals("versions")) {
          return method(
              "POST",
              method,
              () -> compatibility(path.get(2), path.get(4), body, query.get("verbose")));
        }
        break;
      case "config":
        if (n <= 2) {
          return config(method, n == 2 ? path.get(1) : null, query, body);
        }
        break;
      default:
        break;
    }
    throw new RegistryException(404, 404, "HTTP 404 Not Found");
  }

  private Answer compatibility(String subject, String version, byte[] body, String verbose) {
    BackwardCompatibility.Report report =
        registry.testCompatibility(subject, version, schemaOf(body));
    ObjectNode answer = JSON.createObjectNode().put("is_compatible", report.compatible());
    if ("true".equalsIgnoreCase(verbose)) {
      answer.set("messages", strings(report.problems()));
    }
    return Answer.ok(answer);
  }

  private Answer config(String method, String subject, Map<String, String> query, byte[] body) {
    if (method.equals("PUT")) {
      JsonNode json = json(body);
      CompatibilityLevel level;
      try {
        level = CompatibilityLevel.parse(json.path("compatibility").asText(null));
      } catch (IllegalArgumentException e) {
        throw new RegistryException(422, 42203, "Invalid compatibility level: " + e.getMessage());
      }
      registry.setLevel(subject, level);
      return Answer.ok(JSON.createObjectNode().put("compatibility", level.name()));
    }
    return method(
        "GET",
        method,
        () -> {
          CompatibilityLevel level =
              subject == null
                  ? registry.globalLevel()
                  : registry.subjectLevel(
                      subject, "true".equalsIgnoreCase(query.get("defaultToGlobal")));
          return Answer.ok(JSON.createObjectNode().put("compatibilityLevel", level.name()));
        });
  }

  private static Answer method(
      String expected, String actual, java.util.function.Supplier<Answer> then) {
    if (!expected.equals(actual)) {
      throw new RegistryException(405, 405, "HTTP 405 Method Not Allowed: " + actual);
    }
    return then.get();
  }

  private static String schemaOf(byte[] body) {
    JsonNode json = json(body);
    String type = json.path("schemaType").asText("AVRO");
    if (!type.equals("AVRO")) {
      throw RegistryException.invalidSchema(
          "schema type " + type + " is not supported yet; this registry stores AVRO schemas only");
    }
    JsonNode references = json.path("references");
    if (references.isArray() && references.size() > 0) {
      throw RegistryException.invalidSchema("schema references are not supported yet");
    }
    JsonNode schema = json.get("schema");
    if (schema == null || !schema.isTextual()) {
      throw RegistryException.invalidSchema(
          "request body must be {\"schema\": \"<Avro schema as a JSON string>\"}");
    }
    return schema.asText();
  }

  private static JsonNode json(byte[] body) {
    try {
      JsonNode json = JSON.readTree(body);
      if (json == null || !json.isObject()) {
        throw new RegistryException(400, 400, "request body must be a JSON object");
      }
      return json;
    } catch (IOException e) {
      throw new RegistryException(400, 400, "request body is not valid JSON: " + e.getMessage());
    }
  }

  private static int schemaId(String text) {
    try {
      return Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new RegistryException(404, 40403, "Schema " + text + " not found");
    }
  }

  private static ObjectNode version(SchemaRegistry.Version v) {
    return JSON.createObjectNode()
        .put("subject", v.subject())
        .put("version", v.version())
        .put("id", v.id())
        .put("schema", v.schema());
  }

  private static JsonNode raw(String schema) {
    try {
      return JSON.readTree(schema);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static ArrayNode strings(List<String> values) {
    ArrayNode array = JSON.createArrayNode();
    values.forEach(array::add);
    return array;
  }

  private static ArrayNode ints(List<Integer> values) {
    ArrayNode array = JSON.createArrayNode();
    values.forEach(array::add);
    return array;
  }

  private static Answer error(int status, int code, String message) {
    return new Answer(
        status, JSON.createObjectNode().put("error_code", code).put("message", message));
  }

  private static List<String> segments(String rawPath) {
    List<String> segments = new ArrayList<>();
    for (String part : rawPath.split("/")) {
      if (!part.isEmpty()) {
        segments.add(URLDecoder.decode(part.replace("+", "%2B"), StandardCharsets.UTF_8));
      }
    }
    return segments;
  }

  private static Map<String, String> query(String rawQuery) {
    Map<String, String> params = new HashMap<>();
    if (rawQuery != null) {
      for (String pair : rawQuery.split("&")) {
        int eq = pair.indexOf('=');
        String key = eq < 0 ? pair : pair.substring(0, eq);
        String value = eq < 0 ? "" : pair.substring(eq + 1);
        params.put(
            URLDecoder.decode(key, StandardCharsets.UTF_8),
            URLDecoder.decode(value, StandardCharsets.UTF_8));
      }
    }
    return params;
  }
}
