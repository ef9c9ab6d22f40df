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
    return kept.isEmpty() ? last.getClass().getSimpleName() : String.join(": ", kept);
  }

  /** True for faults a later attempt may not meet: storage, network, registry outages. */
  static boolean retriable(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof BlobStore.BlobNotFoundException) {
        return false;
      }
      if (t instanceof BlobStore.BlobStoreException) {
        return t.getCause() != null && BlobStore.isTransient(t.getCause());
      }
      if (t instanceof RetriableException
          || t instanceof TimeoutException
          || (t instanceof IOException && !(t instanceof java.nio.file.FileSystemException))) {
        return true;
      }
      if (t == t.getCause()) {
        break;
      }
    }
    return AvroDeserializer.isRegistryUnavailable(e);
  }
}
