package dev.compactor.schemas.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.schemas.CompatibilityLevel;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParseException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link SchemaRegistryClient} speaking the Confluent Schema Registry REST API over {@code
 * java.net.http}; it works unchanged against Confluent's server and against Compactor's own
 * registry server. Schemas by id and ids by (subject, schema) are cached for the life of the
 * client, so steady-state serialization does no HTTP at all.
 *
 * <p>Configuration keys follow Confluent's serializer settings: {@value #URL_CONFIG}
 * (comma-separated base URLs, tried in order when one is unreachable) and {@value
 * #BASIC_AUTH_USER_INFO_CONFIG} ({@code user:password}).
 */
public final class RestSchemaRegistryClient implements SchemaRegistryClient {

  /** Base URL(s) of the registry, comma separated. */
  public static final String URL_CONFIG = "schema.registry.url";

  /** {@code user:password} for HTTP basic authentication; absent means no authentication. */
  public static final String BASIC_AUTH_USER_INFO_CONFIG = "basic.auth.user.info";

  /** The content type of the registry's v1 API, used for requests and accepted for answers. */
  public static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

  private static final Logger LOG = LoggerFactory.getLogger(RestSchemaRegistryClient.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private final List<URI> baseUrls;
  private final String authorization;
  private final HttpClient http;
  private final Map<Integer, Schema> schemasById = new ConcurrentHashMap<>();
  private final Map<String, Map<Schema, Integer>> idsBySubject = new ConcurrentHashMap<>();

  /** A client without authentication for one or more comma-separated base URLs. */
  public RestSchemaRegistryClient(String baseUrls) {
    this(baseUrls, null);
  }

  /**
   * A client for one or more comma-separated base URLs.
   *
   * @param basicAuthUserInfo {@code user:password} for basic auth, or null for none
   */
  public RestSchemaRegistryClient(String baseUrls, String basicAuthUserInfo) {
    Objects.requireNonNull(baseUrls, URL_CONFIG);
    List<URI> urls = new ArrayList<>();
    for (String url : baseUrls.split(",")) {
      String trimmed = url.trim();
      if (!trimmed.isEmpty()) {
        urls.add(URI.create(trimmed.endsWith("/") ? trimmed : trimmed + "/"));
      }
    }
    if (urls.isEmpty()) {
      throw new IllegalArgumentException(
          URL_CONFIG + " must name at least one URL, found '" + baseUrls + "'");
    }
    this.baseUrls = List.copyOf(urls);
    this.authorization =
        basicAuthUserInfo == null || basicAuthUserInfo.isBlank()
            ? null
            : "Basic "
                + Base64.getEncoder()
                    .encodeToString(basicAuthUserInfo.getBytes(StandardCharsets.UTF_8));
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
  }

  /** A client built from Kafka-style configs ({@value #URL_CONFIG}, basic-auth user info). */
  public static RestSchemaRegistryClient fromConfig(Map<String, ?> configs) {
    Object url = configs.get(URL_CONFIG);
    if (url == null) {
      throw new IllegalArgumentException("missing required config " + URL_CONFIG);
    }
    Object auth = configs.get(BASIC_AUTH_USER_INFO_CONFIG);
    return new RestSchemaRegistryClient(url.toString(), auth == null ? null : auth.toString());
  }

  @Override
  public int register(String subject, Schema schema) {
    Map<Schema, Integer> known =
        idsBySubject.computeIfAbsent(subject, s -> new ConcurrentHashMap<>());
    Integer cached = known.get(schema);
    if (cached != null) {
      return cached;
    }
    JsonNode answer = send("POST", "subjects/" + encode(subject) + "/versions", schemaBody(schema));
    int id = answer.path("id").asInt(-1);
    if (id < 0) {
      throw new SchemaRegistryException(
          200, 50001, "registry answered register(" + subject + ") without an id: " + answer);
    }
    known.put(schema, id);
    schemasById.putIfAbsent(id, schema);
    return id;
  }

  @Override
  public Schema getById(int id) {
    Schema cached = schemasById.get(id);
    if (cached != null) {
      return cached;
    }
    JsonNode answer = send("GET", "schemas/ids/" + id, null);
    Schema schema = parse(answer.path("schema").asText(), "schema id " + id);
    schemasById.putIfAbsent(id, schema);
    return schemasById.get(id);
  }

  @Override
  public SchemaMetadata latest(String subject) {
    return metadata(send("GET", "subjects/" + encode(subject) + "/versions/latest", null));
  }

  @Override
  public SchemaMetadata version(String subject, int version) {
    return metadata(send("GET", "subjects/" + encode(subject) + "/versions/" + version, null));
  }

  @Override
  public SchemaMetadata lookup(String subject, Schema schema) {
    SchemaMetadata found =
        metadata(send("POST", "subjects/" + encode(subject), schemaBody(schema)));
    idsBySubject.computeIfAbsent(subject, s -> new ConcurrentHashMap<>()).put(schema, found.id());
    return found;
  }

  @Override
  public boolean testCompatibility(String subject, Schema schema) {
    JsonNode answer =
        send(
            "POST",
            "compatibility/subjects/" + encode(subject) + "/versions/latest",
            schemaBody(schema));
    if (!answer.has("is_compatible")) {
      throw new SchemaRegistryException(
          200, 50001, "registry answered without is_compatible: " + answer);
    }
    return answer.get("is_compatible").asBoolean();
  }

  @Override
  public List<String> subjects() {
    List<String> subjects = new ArrayList<>();
    send("GET", "subjects", null).forEach(node -> subjects.add(node.asText()));
    return subjects;
  }

  @Override
  public List<Integer> versions(String subject) {
    List<Integer> versions = new ArrayList<>();
    send("GET", "subjects/" + encode(subject) + "/versions", null)
        .forEach(node -> versions.add(node.asInt()));
    return versions;
  }

  @Override
  public CompatibilityLevel compatibility(String subject) {
    if (subject == null) {
      return CompatibilityLevel.parse(
          send("GET", "config", null).path("compatibilityLevel").asText());
    }
    try {
      return CompatibilityLevel.parse(
          send("GET", "config/" + encode(subject) + "?defaultToGlobal=true", null)
              .path("compatibilityLevel")
              .asText());
    } catch (SchemaRegistryException e) {
      // Registries older than defaultToGlobal answer 404 for a subject without its own level.
      if (e.isNotFound()) {
        return compatibility(null);
      }
      throw e;
    }
  }

  @Override
  public CompatibilityLevel setCompatibility(String subject, CompatibilityLevel level) {
    ObjectNode body = JSON.createObjectNode().put("compatibility", level.name());
    String path = subject == null ? "config" : "config/" + encode(subject);
    return CompatibilityLevel.parse(send("PUT", path, body).path("compatibility").asText());
  }

  private static ObjectNode schemaBody(Schema schema) {
    // schemaType is left out on purpose: absent means AVRO, and registries older than Confluent 5.5
    // reject the field.
    return JSON.createObjectNode().put("schema", schema.toString());
  }

  private static SchemaMetadata metadata(JsonNode answer) {
    String subject = answer.path("subject").asText();
    return new SchemaMetadata(
        subject,
        answer.path("id").asInt(),
        answer.path("version").asInt(),
        parse(answer.path("schema").asText(), "subject " + subject));
  }

  private static Schema parse(String text, String what) {
    try {
      return new Schema.Parser().parse(text);
    } catch (SchemaParseException e) {
      throw new SchemaRegistryException(
          200,
          SchemaRegistryException.INVALID_SCHEMA,
          "registry sent an unparsable schema for " + what,
          e);
    }
  }

  private static String encode(String segment) {
    return URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20");
  }

  private JsonNode send(String method, String path, JsonNode body) {
    IOException lastFailure = null;
    for (URI base : baseUrls) {
      URI uri = base.resolve(path);
      HttpRequest.Builder request =
          HttpRequest.newBuilder(uri)
              .timeout(TIMEOUT)
              .header(
                  "Accept",
                  CONTENT_TYPE + ", application/vnd.schemaregistry+json, application/json")
              .method(
                  method,
                  body == null
                      ? HttpRequest.BodyPublishers.noBody()
                      : HttpRequest.BodyPublishers.ofString(
                          body.toString(), StandardCharsets.UTF_8));
      if (body != null) {
        request.header("Content-Type", CONTENT_TYPE);
      }
      if (authorization != null) {
        request.header("Authorization", authorization);
      }
      HttpResponse<String> response;
      try {
        response =
            http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      } catch (IOException e) {
        LOG.warn("schema registry {} unreachable for {} {}: {}", base, method, path, e.toString());
        lastFailure = e;
        continue;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new SchemaRegistryException("interrupted during " + method + " " + uri, e);
      }
      return answer(method, uri, response);
    }
    throw new SchemaRegistryException(
        "schema registry unreachable at " + baseUrls + " for " + method + " " + path, lastFailure);
  }

  private static JsonNode answer(String method, URI uri, HttpResponse<String> response) {
    JsonNode json;
    try {
      json = response.body().isEmpty() ? JSON.nullNode() : JSON.readTree(response.body());
    } catch (IOException e) {
      json = null;
    }
    int status = response.statusCode();
    if (status >= 200 && status < 300 && json != null) {
      return json;
    }
    if (json != null && json.has("error_code")) {
      throw new SchemaRegistryException(
          status,
          json.path("error_code").asInt(status),
          json.path("message").asText() + " (" + method + " " + uri + ")");
    }
    throw new SchemaRegistryException(
        status,
        status,
        "registry answered HTTP "
            + status
            + " with a body that is not the expected JSON for "
            + method
            + " "
            + uri
            + ": "
            + abbreviate(response.body()));
  }

  private static String abbreviate(String text) {
    return text.length() <= 200 ? text : text.substring(0, 200) + "...";
  }

  @Override
  public String toString() {
    return "RestSchemaRegistryClient" + Arrays.toString(baseUrls.toArray());
  }
}
