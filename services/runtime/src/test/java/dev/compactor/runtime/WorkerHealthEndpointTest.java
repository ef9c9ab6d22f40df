package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The worker's /health: loopback by default, and false when the broker cannot be reached. */
class WorkerHealthEndpointTest {

  static final WorkerHealth RUNNING =
      new WorkerHealth("prune", "w1", "RUNNING", List.of(), 0, 0, 0, 0, 0, 0, 0, null);

  static StageConfig config(String bootstrap) {
    return StageConfig.of(
        Map.of(
            "COMPACTOR_KAFKA_BOOTSTRAP", bootstrap,
            "COMPACTOR_S3_ACCESS_KEY", "k",
            "COMPACTOR_S3_SECRET_KEY", "s",
            "COMPACTOR_STAGE", "prune"));
  }

  @Test
  void bindsToTheLoopbackByDefault() throws Exception {
    StageConfig c = config("127.0.0.1:1");
    assertEquals("127.0.0.1", c.get(StageConfig.HEALTH_BIND));
    try (BrokerProbe probe = new BrokerProbe(c)) {
      HttpServer s =
          StageService.healthServer(() -> RUNNING, probe, c.get(StageConfig.HEALTH_BIND), 0);
      try {
        assertTrue(s.getAddress().getAddress().isLoopbackAddress(), s.getAddress().toString());
      } finally {
        s.stop(0);
      }
    }
  }

  @Test
  void aRunningWorkerWhoseBrokerIsUnreachableIsUnhealthy() throws Exception {
    // nothing listens on port 1: the worker's consumer would retry forever, state RUNNING
    try (BrokerProbe probe = new BrokerProbe(config("127.0.0.1:1"))) {
      HttpServer s = StageService.healthServer(() -> RUNNING, probe, "127.0.0.1", 0);
      try {
        HttpResponse<String> r =
            HttpClient.newHttpClient()
                .send(
                    HttpRequest.newBuilder(
                            URI.create("http://127.0.0.1:" + s.getAddress().getPort() + "/health"))
                        .build(),
                    HttpResponse.BodyHandlers.ofString());
        assertEquals(503, r.statusCode(), r.body());
        assertTrue(r.body().contains("\"brokerReachable\":false"), r.body());
        assertTrue(r.body().contains("\"healthy\":false"), r.body());
      } finally {
        s.stop(0);
      }
    }
  }

  @Test
  void theProbeAnswerIsCachedForAFewSeconds() {
    AtomicLong now = new AtomicLong();
    java.util.Properties p = new java.util.Properties();
    p.put("bootstrap.servers", "127.0.0.1:1");
    p.put("request.timeout.ms", 500);
    p.put("default.api.timeout.ms", 500);
    try (BrokerProbe probe =
        new BrokerProbe(org.apache.kafka.clients.admin.Admin.create(p), now::get)) {
      assertFalse(probe.reachable());
      long t0 = System.nanoTime();
      assertFalse(probe.reachable());
      assertTrue(System.nanoTime() - t0 < 100_000_000L, "second answer came from the cache");
      now.addAndGet(BrokerProbe.CACHE.toNanos() + 1);
      t0 = System.nanoTime();
      assertFalse(probe.reachable());
      assertTrue(System.nanoTime() - t0 > 100_000_000L, "checked again after the cache expired");
    }
  }
}
