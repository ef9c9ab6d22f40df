package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class CompletionMarkerTest {
  @Test
  void roundTripsRecordBytesAndCoordinates() {
    CompletionMarker m =
        new CompletionMarker(
            "compactor.stage.prune.requested",
            3,
            42,
            true,
            "w1",
            List.of(
                new CompletionMarker.OutRecord("t1", new byte[] {1, 2}, new byte[] {0, 0, 0, 0, 7}),
                new CompletionMarker.OutRecord("t2", null, new byte[] {9})));
    CompletionMarker back = CompletionMarker.parse(m.toJson());
    assertTrue(back.answers("compactor.stage.prune.requested", 3, 42));
    assertFalse(back.answers("compactor.stage.prune.requested", 3, 43));
    assertTrue(back.completed());
    assertEquals(2, back.records().size());
    assertArrayEquals(new byte[] {0, 0, 0, 0, 7}, back.records().get(0).value());
    assertNull(back.records().get(1).key());
  }

  @Test
  void locationIsPerStageJobStepAndAttempt() {
    assertEquals(
        "s3://bkt/markers/prune/job-1/step-2/attempt-3.json",
        CompletionMarker.location("bkt", "prune", "job-1", 2, 3).toString());
    String hashed = CompletionMarker.location("bkt", "prune", "job/1", 2, 3).key();
    assertTrue(hashed.startsWith("markers/prune/h-"), hashed);
    assertFalse(
        hashed.equals(CompletionMarker.location("bkt", "prune", "job_1", 2, 3).key()), hashed);
  }
}
