package dev.compactor.services.orchestrator;

import static dev.compactor.services.orchestrator.TopologyFixture.artifact;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.events.JobState;
import dev.compactor.runtime.SourcePolicy;
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
            new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
            TOKEN,
            SourcePolicy.parse(stateDir.resolve("models").toString(), "compactor-data"));
  }

  static final String TOKEN = "s3cr3t-token";

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
            .header("Authorization", "Bearer " + TOKEN)
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
    HttpResponse<String> anonymous =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/jobs/job-2"))
                .DELETE()
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(401, anonymous.statusCode(), "a cancel is a write: it needs the token");
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
    return post(body, "Bearer " + TOKEN);
  }

  private HttpResponse<String> post(String body, String authorization)
      throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/jobs"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String job(String id, String modelUri, String recipe) {
    return JobJson.MAPPER
        .createObjectNode()
        .put("jobId", id)
        .put("modelUri", modelUri)
        .put("recipeYaml", recipe)
        .toString();
  }

  @Test
  void writesNeedTheBearerTokenAndReadsDoNot() throws Exception {
    String recipe = Files.readString(Path.of("../../recipes/int8-rtn.yaml"));
    String body = job("anon-1", JobTopologyTest.MODEL, recipe);
    HttpResponse<String> none = post(body, null);
    assertEquals(401, none.statusCode(), none.body());
    assertTrue(json(none).get("error").asText().contains("Authorization: Bearer"), none.body());
    assertTrue(none.headers().firstValue("WWW-Authenticate").orElse("").startsWith("Bearer"));
    HttpResponse<String> wrong = post(body, "Bearer " + TOKEN + "x");
    assertEquals(401, wrong.statusCode());
    assertEquals("invalid API token", json(wrong).get("error").asText());
    assertEquals(401, post(body, "Basic " + TOKEN).statusCode());
    assertTrue(t.store().get("anon-1") == null, "nothing was submitted");
    assertEquals(200, get("/jobs").statusCode(), "reads stay open");
  }

  @Test
  void withoutAConfiguredTokenEveryWriteIsRefused() throws Exception {
    try (JobHttpServer open =
        new JobHttpServer(
            JobQueries.of(t::store),
            JobSubmitter.of(
                job -> t.submitted.pipeInput(job.getJobId(), job),
                c -> t.cancels.pipeInput(c.getJobId(), c)),
            new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
            "",
            SourcePolicy.UNRESTRICTED)) {
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + open.port() + "/jobs"))
                  .header("Authorization", "Bearer ")
                  .POST(HttpRequest.BodyPublishers.ofString("{}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(401, r.statusCode());
      assertTrue(r.body().contains("COMPACTOR_API_TOKEN"), r.body());
    }
  }

  @Test
  void sourcesOutsideThePolicyAreRefusedAtSubmission() throws Exception {
    String recipe = Files.readString(Path.of("../../recipes/int8-rtn.yaml"));
    HttpResponse<String> passwd = post(job("p-1", "file:///etc/", recipe));
    assertEquals(422, passwd.statusCode(), passwd.body());
    assertTrue(json(passwd).get("error").asText().contains("outside the allowed"), passwd.body());
    HttpResponse<String> dotdot =
        post(job("p-2", stateDir.resolve("models").toUri() + "../", recipe));
    assertEquals(422, dotdot.statusCode(), dotdot.body());
    HttpResponse<String> bucket = post(job("p-3", "s3://other-users/models/x/", recipe));
    assertEquals(422, bucket.statusCode(), bucket.body());
    String calibrated = recipe.replace("s3://compactor-data/calibration.txt", "file:///etc/passwd");
    HttpResponse<String> calib = post(job("p-4", JobTopologyTest.MODEL, calibrated));
    assertEquals(422, calib.statusCode(), calib.body());
    assertTrue(calib.body().contains("/etc/passwd"), calib.body());
    assertEquals(
        202,
        post(job("p-5", stateDir.resolve("models/tiny").toUri().toString(), recipe)).statusCode());
  }

  @Test
  void bindsWhereItIsTold() {
    assertTrue(server.address().getAddress().isLoopbackAddress());
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
