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
}
