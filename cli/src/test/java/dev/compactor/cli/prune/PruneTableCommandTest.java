package dev.compactor.cli.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.quant.CliRun;
import org.junit.jupiter.api.Test;

class PruneTableCommandTest {

  @Test
  void latencyRepeatsBelowOneAreRefusedBeforeAnyWork() {
    CliRun r = CliRun.of("prune-table", "--latency-repeats", "0");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--latency-repeats: expected at least 1, found 0"), r.err());
  }
}
