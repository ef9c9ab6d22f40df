package dev.compactor.runtime;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

/**
 * Whether the worker can reach its Kafka brokers right now, for {@code /health}: a worker whose
 * broker moved or died keeps its state RUNNING (its consumer just retries), so without this check
 * an orchestrator of containers would go on thinking a stranded worker is fine. One cheap {@code
 * describeCluster} call, its answer cached for {@link #CACHE} so probes cost the broker nothing.
 */
final class BrokerProbe implements AutoCloseable {
  /** How long one answer is reused. */
  static final Duration CACHE = Duration.ofSeconds(3);

  private static final Duration TIMEOUT = Duration.ofSeconds(2);

  private final Admin admin;
  private final LongSupplier nanoClock;
  private long checkedAt;
  private boolean checked;
  private boolean reachable;
  private String problem = "";

  BrokerProbe(StageConfig config) {
    this(admin(config), System::nanoTime);
  }

  BrokerProbe(Admin admin, LongSupplier nanoClock) {
    this.admin = admin;
    this.nanoClock = nanoClock;
  }

  private static Admin admin(StageConfig config) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, config.get(StageConfig.KAFKA_BOOTSTRAP));
    p.put(AdminClientConfig.CLIENT_ID_CONFIG, "compactor-health-" + config.get(StageConfig.STAGE));
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) TIMEOUT.toMillis());
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT.toMillis());
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1000);
    KafkaClientProperties.apply(p, KafkaClientProperties.of(config));
    return Admin.create(p);
  }

  /** True when a broker answered within the last {@link #CACHE} (checking again if older). */
  synchronized boolean reachable() {
    long now = nanoClock.getAsLong();
    if (checked && now - checkedAt < CACHE.toNanos()) {
      return reachable;
    }
    try {
      admin
          .describeCluster(new DescribeClusterOptions().timeoutMs((int) TIMEOUT.toMillis()))
          .clusterId()
          .get(TIMEOUT.toMillis() + 500, TimeUnit.MILLISECONDS);
      reachable = true;
      problem = "";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      reachable = false;
      problem = "interrupted";
    } catch (Exception e) {
      reachable = false;
      problem = String.valueOf(e.getCause() == null ? e : e.getCause());
    }
    checked = true;
    checkedAt = nanoClock.getAsLong();
    return reachable;
  }

  /** Why the last check failed; empty after a success. */
  synchronized String problem() {
    return problem;
  }

  @Override
  public void close() {
    admin.close(Duration.ofSeconds(2));
  }
}
