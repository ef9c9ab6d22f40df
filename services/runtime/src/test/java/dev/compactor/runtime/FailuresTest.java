package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.junit.jupiter.api.Test;

class FailuresTest {
  @Test
  void reasonIsTheRootCauseOnOneLine() {
    Exception e =
        new RuntimeException(
            new IllegalStateException(
                new IllegalArgumentException("header: expected magic GGUF,\n found GGUG")));
    assertEquals("header: expected magic GGUF, found GGUG", Failures.reason(e));
    assertEquals("NullPointerException", Failures.reason(new NullPointerException()));
  }

  @Test
  void reasonKeepsAnInformativeOuterMessage() {
    Exception e =
        new IllegalStateException(
            "could not read layer 3", new IOException("unexpected end of file"));
    assertEquals("could not read layer 3: unexpected end of file", Failures.reason(e));
  }

  @Test
  void storageAndNetworkFaultsAreRetriableBadInputIsNot() {
    assertTrue(Failures.retriable(new UncheckedIOException(new IOException("reset"))));
    assertTrue(
        Failures.retriable(
            new BlobStore.BlobStoreException("put", new IOException("connection refused"))));
    assertFalse(Failures.retriable(new BlobStore.BlobNotFoundException("get x: NoSuchKey", null)));
    assertFalse(Failures.retriable(new IllegalArgumentException("bits: expected 2..8, found 9")));
  }

  /** Issue 8: a corrupt header was tried three times; what the input causes fails at once. */
  @Test
  void malformedFilesFailOnTheFirstAttemptTransportFaultsDoNot() {
    class CheckpointFormatException extends IOException {
      CheckpointFormatException(String m) {
        super(m);
      }
    }
    assertFalse(
        Failures.retriable(
            new UncheckedIOException(new CheckpointFormatException("header: bad JSON"))));
    assertFalse(Failures.retriable(new java.io.EOFException("truncated")));
    assertFalse(Failures.retriable(new java.nio.file.NoSuchFileException("/x")));
    assertTrue(Failures.retriable(new IllegalStateException(new java.net.ConnectException("no"))));
    assertTrue(Failures.retriable(new java.net.SocketTimeoutException("read timed out")));
  }

  /** Issue 8: an Error was redelivered forever; it is now an answer, retried within the limit. */
  @Test
  void jvmErrorsAreRetriableExceptAStackOverflow() {
    assertTrue(Failures.retriable(new OutOfMemoryError("Java heap space")));
    assertTrue(Failures.retriable(new UnsatisfiedLinkError("torchSetGradMode")));
    assertFalse(Failures.retriable(new StackOverflowError()));
    assertEquals(
        "OutOfMemoryError: Java heap space",
        Failures.reason(new OutOfMemoryError("Java heap space")));
  }
}
