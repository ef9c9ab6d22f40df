package dev.compactor.runtime;

import dev.compactor.schemas.serde.AvroDeserializer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.common.errors.RetriableException;

/** Turns an exception into what a {@code StageFailed} event says about it. */
final class Failures {
  private Failures() {}

  /** The deepest cause. */
  static Throwable rootCause(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t;
  }

  /**
   * A one-line, human-readable reason, never a stack trace: the messages along the cause chain,
   * outermost first, skipping messages that only repeat their cause (Java's default wrapping) or
   * that an outer message already contains; the root cause's type stands in when no message is
   * left.
   */
  static String reason(Throwable e) {
    List<String> kept = new ArrayList<>();
    Throwable last = e;
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      last = t;
      String m = t.getMessage();
      if (m == null || m.isBlank()) {
        continue;
      }
      if (t.getCause() != null && m.equals(t.getCause().toString())) {
        continue;
      }
      String flat = m.replaceAll("\\s*\\R\\s*", " ").strip();
      if (kept.stream().noneMatch(k -> k.contains(flat))) {
        kept.add(flat);
      }
    }
    if (kept.isEmpty()) {
      return last.getClass().getSimpleName();
    }
    String joined = String.join(": ", kept);
    // "Java heap space" alone does not say what happened: an Error's type always leads
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof Error && !joined.contains(t.getClass().getSimpleName())) {
        return t.getClass().getSimpleName() + ": " + joined;
      }
    }
    return joined;
  }

  /**
   * True for faults a later attempt, perhaps on another worker, may not meet: storage, network and
   * registry outages, and the JVM's own errors (out of memory, a native library this worker lacks)
   * — bounded by the orchestrator's attempt limit. False for what the input itself causes, which
   * fails the same way every time: a malformed checkpoint or recipe, an unsupported model, a
   * missing object, a stack overflow. Of the {@link IOException}s only the transport kinds count
   * (sockets, HTTP timeouts, TLS, and the bare {@code IOException} that HTTP clients throw for a
   * reset connection); subclasses such as a checkpoint format error or a truncated file do not.
   */
  static boolean retriable(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof StackOverflowError) {
        return false;
      }
      if (t instanceof VirtualMachineError
          || t instanceof LinkageError
          || t instanceof JobRunner.DeliveriesExhausted) {
        return true;
      }
      if (t instanceof BlobStore.BlobNotFoundException) {
        return false;
      }
      if (t instanceof BlobStore.BlobStoreException) {
        return t.getCause() != null && BlobStore.isTransient(t.getCause());
      }
      if (t instanceof RetriableException || t instanceof TimeoutException || isTransport(t)) {
        return true;
      }
    }
    return AvroDeserializer.isRegistryUnavailable(e);
  }

  private static boolean isTransport(Throwable t) {
    return t.getClass() == IOException.class
        || t instanceof java.net.SocketException
        || t instanceof java.net.SocketTimeoutException
        || t instanceof java.net.UnknownHostException
        || t instanceof java.net.http.HttpTimeoutException
        || t instanceof javax.net.ssl.SSLException;
  }
}
