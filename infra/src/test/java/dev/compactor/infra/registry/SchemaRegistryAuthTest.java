package dev.compactor.infra.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.JobSubmitted;
import dev.compactor.schemas.CompatibilityLevel;
import dev.compactor.schemas.registry.RestSchemaRegistryClient;
import dev.compactor.schemas.registry.SchemaRegistryException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Basic auth with roles, as Confluent's clients send it (basic.auth.user.info=user:pass). */
class SchemaRegistryAuthTest {
  private SchemaRegistryServer server;

  @BeforeEach
  void start() {
    server =
        SchemaRegistryServer.start(
            new InMemorySchemaStore(),
            "127.0.0.1",
            0,
            RegistryAuth.builder()
                .user("reader", "r-pass", RegistryAuth.Role.READ)
                .user("writer", "w-pass", RegistryAuth.Role.WRITE)
                .user("admin", "a-pass", RegistryAuth.Role.ADMIN)
                .build());
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private RestSchemaRegistryClient as(String userInfo) {
    return new RestSchemaRegistryClient(server.url(), userInfo);
  }

  @Test
  void withoutCredentialsNothingIsAllowed() throws Exception {
    SchemaRegistryException e =
        assertThrows(
            SchemaRegistryException.class,
            () -> as(null).register("x-value", JobSubmitted.getClassSchema()));
    assertEquals(401, e.httpStatus());
    assertEquals(40101, e.errorCode());
    assertEquals(
        401, assertThrows(SchemaRegistryException.class, () -> as(null).subjects()).httpStatus());
    HttpResponse<String> put =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create(server.url() + "/config"))
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .PUT(HttpRequest.BodyPublishers.ofString("{\"compatibility\":\"NONE\"}"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertEquals(401, put.statusCode(), put.body());
    assertTrue(put.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Basic"));
    assertEquals(CompatibilityLevel.BACKWARD, as("admin:a-pass").compatibility(null));
  }

  @Test
  void aWrongPasswordIsRefused() {
    assertEquals(
        401,
        assertThrows(SchemaRegistryException.class, () -> as("writer:nope").subjects())
            .httpStatus());
    assertEquals(
        401,
        assertThrows(SchemaRegistryException.class, () -> as("ghost:w-pass").subjects())
            .httpStatus());
  }

  @Test
  void readersReadWritersRegisterAdminsChangeCompatibility() {
    int id = as("writer:w-pass").register("x-value", JobSubmitted.getClassSchema());
    assertEquals(JobSubmitted.getClassSchema(), as("reader:r-pass").getById(id));
    assertEquals(List.of("x-value"), as("reader:r-pass").subjects());
    assertTrue(
        as("reader:r-pass").testCompatibility("x-value", JobSubmitted.getClassSchema()),
        "a compatibility test changes nothing: readers may run it");
    SchemaRegistryException readerWrites =
        assertThrows(
            SchemaRegistryException.class,
            () -> as("reader:r-pass").register("y-value", JobSubmitted.getClassSchema()));
    assertEquals(403, readerWrites.httpStatus());
    assertTrue(readerWrites.getMessage().contains("WRITE"), readerWrites.getMessage());
    SchemaRegistryException writerConfig =
        assertThrows(
            SchemaRegistryException.class,
            () -> as("writer:w-pass").setCompatibility(null, CompatibilityLevel.NONE));
    assertEquals(403, writerConfig.httpStatus());
    assertEquals(
        CompatibilityLevel.NONE,
        as("admin:a-pass").setCompatibility(null, CompatibilityLevel.NONE));
    assertEquals(
        RegistryAuth.Role.ADMIN, SchemaRegistryServer.needed("DELETE", List.of("subjects", "x")));
  }

  @Test
  void anonymousReadsWhenConfigured() {
    server.close();
    server =
        SchemaRegistryServer.start(
            new InMemorySchemaStore(),
            "127.0.0.1",
            0,
            RegistryAuth.builder()
                .user("writer", "w-pass", RegistryAuth.Role.WRITE)
                .anonymous(RegistryAuth.Role.READ)
                .build());
    int id = as("writer:w-pass").register("x-value", JobSubmitted.getClassSchema());
    assertEquals(JobSubmitted.getClassSchema(), as(null).getById(id));
    assertEquals(
        403,
        assertThrows(
                SchemaRegistryException.class,
                () -> as(null).register("y-value", JobSubmitted.getClassSchema()))
            .httpStatus());
  }

  @Test
  void theClientTakesConfluentsUserInfoSettings() {
    RestSchemaRegistryClient c =
        RestSchemaRegistryClient.fromConfig(
            Map.of(
                "schema.registry.url", server.url(),
                "basic.auth.credentials.source", "USER_INFO",
                "basic.auth.user.info", "writer:w-pass"));
    assertTrue(c.register("z-value", JobSubmitted.getClassSchema()) > 0);
  }
}
