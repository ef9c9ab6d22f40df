package dev.compactor.services.orchestrator;

import static dev.compactor.services.orchestrator.TopologyFixture.artifact;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.events.JobState;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The HTTP API over the job-state store of a topology that ran real events. */
class JobHttpServerTest {

  @TempDir Path stateDir;
  TopologyFixture t;
  JobHttpServer server;
  final HttpClient http = HttpClient.newHttpClient();

  @BeforeEach
  void setUp() throws IOException {
    t = new TopologyFixture(stateDir);
    String recipe = Files.readString(Path.of(JobTopologyTest.DEMO_RECIPE_PATH));
    t.submit("job-1", JobTopologyTest.MODEL, recipe);
    t.complete(t.drainRequests().get(0), artifact("b", 1000));
    t.submit("job-2", JobTopologyTest.MODEL, "name: x\nstages:\n  - shrink: {}\n");
    server =
        new JobHttpServer(
            JobQueries.of(t::store), new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
  }

  @AfterEach
  void tearDown() {
    server.close();
    t.close();
  }

  private HttpResponse<String> get(String path) throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode json(HttpResponse<String> r) throws IOException {
    assertTrue(
        r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"),
        "JSON content type");
    return JobJson.MAPPER.readTree(r.body());
  }

  @Test
  void getJobRendersPlanArtifactsAndHistory() throws Exception {
    HttpResponse<String> r = get("/jobs/job-1");
    assertEquals(200, r.statusCode(), r.body());
    JsonNode job = json(r);
    assertEquals("job-1", job.get("jobId").asText());
    assertEquals("RUNNING", job.get("state").asText());
    assertEquals(1, job.get("currentStep").asInt());
    assertEquals("demo-all-stages", job.get("recipeName").asText());
    assertEquals(artifact("b", 1000).getUri(), job.get("baseline").get("uri").asText());
    JsonNode steps = job.get("steps");
    assertEquals(6, steps.size());
    assertEquals("ingestion", steps.get(0).get("stage").asText());
    assertEquals("COMPLETED", steps.get(0).get("status").asText());
    assertEquals(1000, steps.get(0).get("output").get("sizeBytes").asLong());
    assertEquals("prune", steps.get(1).get("stage").asText());
    assertEquals("REQUESTED", steps.get(1).get("status").asText());
    assertEquals(artifact("b", 1000).getSha256(), steps.get(1).get("input").get("sha256").asText());
    assertEquals("PENDING", steps.get(5).get("status").asText());
    assertEquals(
        List.of("SUBMITTED", "RUNNING", "RUNNING"),
        List.of(
            job.get("history").get(0).get("state").asText(),
            job.get("history").get(1).get("state").asText(),
            job.get("history").get(2).get("state").asText()));
  }

  @Test
  void listJobsSummarisesEveryJob() throws Exception {
    JsonNode body = json(get("/jobs"));
    assertEquals(2, body.get("jobs").size());
    JsonNode rejected =
        body.get("jobs").get(0).get("jobId").asText().equals("job-2")
            ? body.get("jobs").get(0)
            : body.get("jobs").get(1);
    assertEquals("REJECTED", rejected.get("state").asText());
    assertTrue(rejected.get("message").asText().contains("stages[0].shrink"), rejected.toString());
    assertEquals(0, rejected.get("totalSteps").asInt());
  }

  @Test
  void unknownJobMethodAndPathAreJsonErrors() throws Exception {
    HttpResponse<String> missing = get("/jobs/nope");
    assertEquals(404, missing.statusCode());
    assertTrue(json(missing).get("error").asText().contains("no job nope"));
    assertEquals(404, get("/metrics").statusCode());
    HttpResponse<String> post =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/jobs"))
                .POST(HttpRequest.BodyPublishers.ofString("{}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(405, post.statusCode());
    assertEquals(200, get("/health").statusCode());
  }

  @Test
  void storedStateRoundTripsThroughItsJsonForm() {
    JobRecord stored = t.store().get("job-1");
    byte[] bytes = JobJson.serde().serializer().serialize("changelog", stored);
    JobRecord back = JobJson.serde().deserializer().deserialize("changelog", bytes);
    assertEquals(JobJson.toJson(stored), JobJson.toJson(back));
    assertEquals(JobState.RUNNING, back.state());
    assertEquals(stored.baseline(), back.baseline());
    assertEquals(stored.history(), back.history());
  }
}
