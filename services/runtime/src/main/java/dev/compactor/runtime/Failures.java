package dev.compactor.runtime;

import dev.compactor.schemas.serde.AvroDeserializer;
import java.io.IOException;
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
   * A one-line, human-readable reason: the root cause's message (or its type when it has none),
   * never a stack trace.
   */
  static String reason(Throwable e) {
    Throwable root = rootCause(e);
    String msg = root.getMessage();
    if (msg == null || msg.isBlank()) {
      msg = root.getClass().getSimpleName();
    }
    String top = e.getMessage();
    if (root != e && top != null && !top.isBlank() && !top.contains(msg) && top.length() < 300) {
      msg = top + ": " + msg;
    }
    return msg.replaceAll("\\s*\\R\\s*", " ").strip();
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
