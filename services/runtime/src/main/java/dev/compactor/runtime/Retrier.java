package dev.compactor.runtime;

import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs an operation again after transient faults, waiting exponentially longer between tries
 * (initial, 2×, 4×, ... capped, each with ±25% jitter so a fleet of workers does not retry in
 * lock-step). What counts as transient is the caller's predicate; anything else fails at once.
 */
public final class Retrier {
  private static final Logger log = LoggerFactory.getLogger(Retrier.class);

  /** An operation that may throw any exception. */
  @FunctionalInterface
  public interface Operation<T> extends Callable<T> {}

  private final int attempts;
  private final long initialBackoffMs;
  private final long maxBackoffMs;

  /**
   * @param attempts total tries, at least 1
   * @param initialBackoffMs wait after the first failure
   * @param maxBackoffMs cap on any one wait
   */
  public Retrier(int attempts, long initialBackoffMs, long maxBackoffMs) {
    if (attempts < 1 || initialBackoffMs < 0 || maxBackoffMs < initialBackoffMs) {
      throw new IllegalArgumentException(
          "expected attempts >= 1 and 0 <= initial <= max backoff, found "
              + attempts
              + ", "
              + initialBackoffMs
              + ", "
              + maxBackoffMs);
    }
    this.attempts = attempts;
    this.initialBackoffMs = initialBackoffMs;
    this.maxBackoffMs = maxBackoffMs;
  }

  /** The retry settings of a stage config. */
  public static Retrier from(StageConfig config) {
    return new Retrier(
        config.get(StageConfig.RETRY_ATTEMPTS),
        config.get(StageConfig.RETRY_INITIAL_BACKOFF_MS),
        config.get(StageConfig.RETRY_MAX_BACKOFF_MS));
  }

  /** Total tries per operation. */
  public int attempts() {
    return attempts;
  }

  /**
   * Calls {@code op} until it succeeds, throws a non-transient exception, or the tries run out.
   *
   * @param what a short description for logs, e.g. "put s3://b/k"
   * @throws Exception the last failure, with earlier ones attached as suppressed
   */
  public <T> T call(String what, Predicate<Throwable> isTransient, Operation<T> op)
      throws Exception {
    Exception first = null;
    for (int attempt = 1; ; attempt++) {
      try {
        return op.call();
      } catch (Exception e) {
        if (first != null && first != e) {
          e.addSuppressed(first);
        }
        if (!isTransient.test(e) || attempt >= attempts || Thread.currentThread().isInterrupted()) {
          throw e;
        }
        first = first == null ? e : first;
        long wait = backoffMs(attempt);
        log.warn(
            "{} failed (attempt {}/{}): {}; retrying in {} ms",
            what,
            attempt,
            attempts,
            e.toString(),
            wait);
        Thread.sleep(wait);
      }
    }
  }

  long backoffMs(int failedAttempt) {
    double base = initialBackoffMs * Math.pow(2, Math.min(failedAttempt - 1, 30));
    double capped = Math.min(base, maxBackoffMs);
    double jitter = 0.75 + 0.5 * ThreadLocalRandom.current().nextDouble();
    return Math.min(maxBackoffMs, Math.round(capped * jitter));
  }
}
