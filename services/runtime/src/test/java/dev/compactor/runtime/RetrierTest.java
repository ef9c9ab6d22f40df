package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class RetrierTest {
  private final Retrier retrier = new Retrier(4, 1, 4);

  @Test
  void retriesTransientFaultsUntilSuccess() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    String v =
        retrier.call(
            "op",
            e -> e instanceof IOException,
            () -> {
              if (calls.incrementAndGet() < 3) {
                throw new IOException("connection reset");
              }
              return "ok";
            });
    assertEquals("ok", v);
    assertEquals(3, calls.get());
  }

  @Test
  void givesUpAfterTheLastAttemptKeepingEarlierFailures() {
    AtomicInteger calls = new AtomicInteger();
    IOException e =
        assertThrows(
            IOException.class,
            () ->
                retrier.call(
                    "op",
                    x -> true,
                    () -> {
                      throw new IOException("down " + calls.incrementAndGet());
                    }));
    assertEquals(4, calls.get());
    assertEquals("down 4", e.getMessage());
    assertEquals(1, e.getSuppressed().length);
  }

  @Test
  void doesNotRetryPermanentFaults() {
    AtomicInteger calls = new AtomicInteger();
    assertThrows(
        IllegalArgumentException.class,
        () ->
            retrier.call(
                "op",
                x -> x instanceof IOException,
                () -> {
                  calls.incrementAndGet();
                  throw new IllegalArgumentException("bad");
                }));
    assertEquals(1, calls.get());
  }

  @Test
  void backoffGrowsExponentiallyWithinTheCap() {
    Retrier r = new Retrier(10, 100, 1000);
    for (int i = 0; i < 50; i++) {
      long first = r.backoffMs(1);
      long third = r.backoffMs(3);
      long tenth = r.backoffMs(10);
      assertTrue(first >= 75 && first <= 125, "first " + first);
      assertTrue(third >= 300 && third <= 500, "third " + third);
      assertTrue(tenth >= 750 && tenth <= 1000, "tenth " + tenth);
    }
  }
}
