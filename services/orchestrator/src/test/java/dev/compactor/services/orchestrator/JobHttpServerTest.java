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
            JobQueries.of(t::store),
            JobSubmitter.of(
                job -> t.submitted.pipeInput(job.getJobId(), job),
                c -> t.cancels.pipeInput(c.getJobId(), c)),
            new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
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

  private HttpResponse<String> delete(String path) throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .DELETE()
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** Issue 8: DELETE /jobs/{id} cancels a running job; an ended one answers 409. */
  @Test
  void deleteCancelsARunningJobAndRefusesAnEndedOne() throws Exception {
    HttpResponse<String> cancelled = delete("/jobs/job-1?reason=wrong%20recipe");
    assertEquals(202, cancelled.statusCode(), cancelled.body());
    assertEquals("job-1", json(cancelled).get("jobId").asText());
    JsonNode job = json(get("/jobs/job-1"));
    assertEquals("CANCELLED", job.get("state").asText());
    assertTrue(
        job.get("message").asText().startsWith("cancelled by http: wrong recipe"), job.toString());
    HttpResponse<String> again = delete("/jobs/job-1");
    assertEquals(409, again.statusCode());
    assertTrue(json(again).get("error").asText().contains("already ended CANCELLED"));
    assertEquals(409, delete("/jobs/job-2").statusCode(), "a rejected job has ended");
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
    HttpResponse<String> delete = delete("/health");
    assertEquals(405, delete.statusCode());
    assertEquals("GET", delete.headers().firstValue("Allow").orElse(""));
    assertEquals(404, delete("/jobs/nope").statusCode());
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

  private HttpResponse<String> post(String body) throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/jobs"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void postJobSubmitsItAndTheJobCanBeFollowed() throws Exception {
    String recipe = Files.readString(Path.of("../../recipes/int8-rtn.yaml"));
    String body =
        JobJson.MAPPER
            .createObjectNode()
            .put("jobId", "posted-1")
            .put("modelUri", JobTopologyTest.MODEL)
            .put("recipeYaml", recipe)
            .put("submitter", "alice")
            .toString();
    HttpResponse<String> r = post(body);
    assertEquals(202, r.statusCode(), r.body());
    assertEquals("/jobs/posted-1", json(r).get("status").asText());
    assertEquals("/jobs/posted-1", r.headers().firstValue("Location").orElse(""));

    JsonNode job = json(get("/jobs/posted-1"));
    assertEquals("RUNNING", job.get("state").asText());
    assertEquals("alice", job.get("submitter").asText());
    assertEquals(
        List.of("ingestion"),
        t.drainRequests().stream()
            .filter(q -> q.getJobId().equals("posted-1"))
            .map(q -> q.getStage())
            .toList());

    assertEquals(409, post(body).statusCode(), "the job id is taken");
  }

  @Test
  void postWithAnInvalidRecipeListsEveryProblem() throws Exception {
    HttpResponse<String> r =
        post(
            JobJson.MAPPER
                .createObjectNode()
                .put("modelUri", JobTopologyTest.MODEL)
                .put("recipeYaml", "name: x\nstages:\n  - prune: { sparsity: 2 }\n  - shrink: {}\n")
                .toString());
    assertEquals(422, r.statusCode(), r.body());
    JsonNode problems = json(r).get("problems");
    assertEquals(2, problems.size());
    assertEquals("stages[0].prune.sparsity", problems.get(0).get("path").asText());
    assertEquals("stages[1].shrink", problems.get(1).get("path").asText());
    assertEquals(400, post("not json").statusCode());
    assertEquals(400, post("{\"modelUri\": \"s3://b/m/\"}").statusCode());
    assertEquals(
        400,
        post("{\"modelUri\": \"s3://b/m/\", \"recipeYaml\": \"x\", \"jobId\": \"a b\"}")
            .statusCode());
  }
}
