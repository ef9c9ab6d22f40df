package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalCheckpointSinkTest {

  @Test
  void latestIsNewestWholeCheckpointAndOldOnesArePruned(@TempDir Path tmp) throws Exception {
    LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve("ckpt"), 2);
    assertTrue(sink.latest().isEmpty());
    Path staging = Files.createDirectories(tmp.resolve("staging"));
    for (long step : new long[] {5, 10, 15}) {
      Files.writeString(staging.resolve("state.json"), "{\"step\":" + step + "}");
      sink.save(step, staging);
    }
    CheckpointSink.Checkpoint latest = sink.latest().orElseThrow();
    assertEquals(15, latest.step());
    assertEquals("{\"step\":15}", Files.readString(latest.directory().resolve("state.json")));
    try (Stream<Path> dirs = Files.list(tmp.resolve("ckpt"))) {
      assertEquals(2, dirs.count());
    }
  }
}
