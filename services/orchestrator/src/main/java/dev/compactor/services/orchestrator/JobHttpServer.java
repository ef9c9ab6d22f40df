package dev.compactor.services.orchestrator;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.events.JobCancelRequested;
import dev.compactor.events.JobState;
import dev.compactor.events.JobSubmitted;
import dev.compactor.runtime.SourcePolicy;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The orchestrator's HTTP API, answered from the job-state store:
 *
 * <ul>
 *   <li>{@code GET /jobs} — every job this instance holds, newest first: {@code {"jobs": [{jobId,
 *       state, step, totalSteps, stage, recipe, message, updatedAtMs}, ...]}}
 *   <li>{@code GET /jobs/{id}} — the whole {@link JobRecord} (plan, steps with input and output
 *       artifacts and metrics, baseline, history); 404 when unknown; 307 to the owning instance
 *       when another orchestrator holds it
 *   <li>{@code POST /jobs} — submit {@code {"modelUri", "recipeYaml", "jobId"?, "submitter"?}}: 202
 *       with {@code {"jobId", "status": "/jobs/{id}"}}; 422 listing every recipe problem; 409 when
 *       the job id is taken; 401 without {@code Authorization: Bearer <token>}; 422 when the model
 *       or calibration source is outside the {@link SourcePolicy}
 *   <li>{@code DELETE /jobs/{id}[?reason=...]} — cancel (token required): 202 with {@code {"jobId",
 *       "status"}}; 404 when unknown; 409 when the job already ended
 *   <li>{@code GET /health} — {@code {"status": "RUNNING"}}; 503 while the store is not queryable
 * </ul>
 *
 * Errors are JSON too: {@code {"error": "..."}}. Every write needs the API token (compared in
 * constant time); without a configured token writes are refused. Reads stay open: bind to the
 * loopback (the default) unless the network in front of it is trusted.
 */
public final class JobHttpServer implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(JobHttpServer.class);

  private final HttpServer server;
  private final ExecutorService executor;
  private final JobQueries queries;
  private final JobSubmitter submitter;
  private final byte[] apiToken;
  private final SourcePolicy sources;

  /**
   * Starts serving on {@code address} (port 0 = any free port).
   *
   * @param apiToken the bearer token writes must carry; null or blank refuses every write
   * @param sources where submitted models and calibration data may come from
   */
  public JobHttpServer(
      JobQueries queries,
      JobSubmitter submitter,
      InetSocketAddress address,
      String apiToken,
      SourcePolicy sources)
      throws IOException {
    this.queries = queries;
    this.submitter = submitter;
    this.apiToken =
        apiToken == null || apiToken.isBlank() ? null : apiToken.getBytes(StandardCharsets.UTF_8);
    this.sources = sources;
    this.server = HttpServer.create(address, 0);
    this.executor = Executors.newFixedThreadPool(2, r -> new Thread(r, "orchestrator-http"));
    server.setExecutor(executor);
    server.createContext("/", this::handle);
    server.start();
    LOG.info("job status API on http://{}:{}/jobs", address.getHostString(), port());
  }

  /** The address actually bound. */
  public InetSocketAddress address() {
    return server.getAddress();
  }

  /** The port actually bound. */
  public int port() {
    return server.getAddress().getPort();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String path = exchange.getRequestURI().getPath();
      boolean jobsPath = path.equals("/jobs") || path.equals("/jobs/");
      if ("POST".equals(exchange.getRequestMethod()) && jobsPath) {
        if (authorized(exchange)) {
          submit(exchange);
        }
        return;
      }
      boolean jobPath = path.startsWith("/jobs/") && !jobsPath;
      if ("DELETE".equals(exchange.getRequestMethod()) && jobPath) {
        if (authorized(exchange)) {
          cancel(
              exchange,
              URLDecoder.decode(path.substring("/jobs/".length()), StandardCharsets.UTF_8),
              query(exchange, "reason"));
        }
        return;
      }
      if (!"GET".equals(exchange.getRequestMethod())) {
        exchange
            .getResponseHeaders()
            .add("Allow", jobsPath ? "GET, POST" : jobPath ? "GET, DELETE" : "GET");
        send(
            exchange,
            405,
            error("only GET is supported here (POST on /jobs, DELETE on /jobs/{id})"));
        return;
      }
      if (path.equals("/health")) {
        JobQueries.Health h = queries.health();
        send(
            exchange,
            h.ok() ? 200 : 503,
            JobJson.MAPPER.createObjectNode().put("status", h.state()).toString());
      } else if (jobsPath) {
        ObjectNode body = JobJson.MAPPER.createObjectNode();
        ArrayNode jobs = body.putArray("jobs");
        queries.jobs().forEach(j -> jobs.add(JobJson.summary(j)));
        send(exchange, 200, body.toString());
      } else if (path.startsWith("/jobs/")) {
        job(exchange, URLDecoder.decode(path.substring("/jobs/".length()), StandardCharsets.UTF_8));
      } else {
        send(exchange, 404, error("no such resource " + path + "; try /jobs, /jobs/{id}, /health"));
      }
    } catch (InvalidStateStoreException e) {
      sendQuietly(
          exchange,
          503,
          error("job state is not queryable right now (rebalancing?): " + e.getMessage()));
    } catch (RuntimeException e) {
      LOG.warn("HTTP {} failed", exchange.getRequestURI(), e);
      sendQuietly(exchange, 500, error(e.toString()));
    }
  }

  /** Answers 401 and returns false unless the request carries the API token. */
  private boolean authorized(HttpExchange exchange) throws IOException {
    if (apiToken == null) {
      exchange.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"compactor\"");
      send(
          exchange,
          401,
          error(
              "writes are disabled: this orchestrator has no API token (set"
                  + " COMPACTOR_API_TOKEN and send it as 'Authorization: Bearer <token>')"));
      return false;
    }
    String header = exchange.getRequestHeaders().getFirst("Authorization");
    byte[] given =
        header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)
            ? header.substring(7).trim().getBytes(StandardCharsets.UTF_8)
            : new byte[0];
    // constant time: a timing difference must not reveal how much of a guess was right
    if (!MessageDigest.isEqual(given, apiToken)) {
      exchange.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"compactor\"");
      send(
          exchange,
          401,
          error(
              header == null
                  ? "missing credentials: send 'Authorization: Bearer <token>' (the"
                      + " COMPACTOR_API_TOKEN; `compactor up` keeps it in <data>/api-token)"
                  : "invalid API token"));
      return false;
    }
    return true;
  }

  private void submit(HttpExchange exchange) throws IOException {
    Object parsed =
        SubmitRequest.parse(exchange.getRequestBody().readAllBytes(), System.currentTimeMillis());
    if (parsed instanceof SubmitRequest.Rejection r) {
      send(exchange, r.status(), r.body().toString());
      return;
    }
    JobSubmitted job = (JobSubmitted) parsed;
    Optional<String> refused;
    try {
      refused =
          JobProcessor.sourceProblem(
              sources, job.getModelUri(), Recipe.parse(job.getRecipeYaml()).calibration());
    } catch (RuntimeException e) {
      refused = Optional.empty(); // already validated by SubmitRequest; the topology reports it
    }
    if (refused.isPresent()) {
      ObjectNode b = JobJson.MAPPER.createObjectNode().put("error", refused.get());
      b.putArray("problems").addObject().put("path", "source").put("message", refused.get());
      send(exchange, 422, b.toString());
      return;
    }
    if (queries.job(job.getJobId()).filter(j -> j.state() != JobState.REJECTED).isPresent()) {
      send(exchange, 409, error("job " + job.getJobId() + " already exists"));
      return;
    }
    try {
      submitter.submit(job);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      send(exchange, 503, error("interrupted while submitting"));
      return;
    } catch (Exception e) {
      LOG.warn("job {}: submission failed", job.getJobId(), e);
      send(exchange, 503, error("could not submit job " + job.getJobId() + ": " + e));
      return;
    }
    LOG.info("job {}: submitted over HTTP", job.getJobId());
    String status = "/jobs/" + job.getJobId();
    exchange.getResponseHeaders().add("Location", status);
    send(
        exchange,
        202,
        JobJson.MAPPER
            .createObjectNode()
            .put("jobId", job.getJobId())
            .put("status", status)
            .toString());
  }

  private void cancel(HttpExchange exchange, String id, String reason) throws IOException {
    Optional<JobRecord> job = queries.job(id);
    if (job.isEmpty()) {
      Optional<String> owner = queries.ownerUrl(id);
      if (owner.isPresent()) {
        exchange.getResponseHeaders().add("Location", owner.get() + "/jobs/" + id);
        send(exchange, 307, error("job " + id + " is held by " + owner.get()));
      } else {
        send(exchange, 404, error("no job " + id));
      }
      return;
    }
    if (job.get().isTerminal()) {
      send(
          exchange,
          409,
          error("job " + id + " already ended " + job.get().state() + "; nothing to cancel"));
      return;
    }
    try {
      submitter.cancel(
          JobCancelRequested.newBuilder()
              .setJobId(id)
              .setReason(reason)
              .setRequestedBy("http")
              .setRequestedAtMs(System.currentTimeMillis())
              .build());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      send(exchange, 503, error("interrupted while cancelling"));
      return;
    } catch (Exception e) {
      LOG.warn("job {}: cancel failed", id, e);
      send(exchange, 503, error("could not cancel job " + id + ": " + e));
      return;
    }
    LOG.info("job {}: cancel requested over HTTP", id);
    send(
        exchange,
        202,
        JobJson.MAPPER.createObjectNode().put("jobId", id).put("status", "/jobs/" + id).toString());
  }

  /** One query parameter, decoded; null when absent. */
  private static String query(HttpExchange exchange, String name) {
    String q = exchange.getRequestURI().getRawQuery();
    if (q == null) {
      return null;
    }
    for (String pair : q.split("&")) {
      int eq = pair.indexOf('=');
      String key = eq < 0 ? pair : pair.substring(0, eq);
      if (URLDecoder.decode(key, StandardCharsets.UTF_8).equals(name)) {
        return eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
      }
    }
    return null;
  }

  private void job(HttpExchange exchange, String id) throws IOException {
    Optional<JobRecord> job = queries.job(id);
    if (job.isPresent()) {
      send(exchange, 200, JobJson.toJson(job.get()));
      return;
    }
    Optional<String> owner = queries.ownerUrl(id);
    if (owner.isPresent()) {
      exchange.getResponseHeaders().add("Location", owner.get() + "/jobs/" + id);
      send(exchange, 307, error("job " + id + " is held by " + owner.get()));
      return;
    }
    send(exchange, 404, error("no job " + id));
  }

  private static String error(String message) {
    return JobJson.MAPPER.createObjectNode().put("error", message).toString();
  }

  private static void send(HttpExchange exchange, int status, String json) throws IOException {
    byte[] body = json.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
    exchange.sendResponseHeaders(status, body.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(body);
    }
  }

  private static void sendQuietly(HttpExchange exchange, int status, String json) {
    try {
      send(exchange, status, json);
    } catch (IOException | RuntimeException e) {
      LOG.debug("could not send error response", e);
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
