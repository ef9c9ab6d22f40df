package dev.compactor.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.tiny.TinyReferenceModel;
import org.junit.jupiter.api.Test;

/**
 * {@code compactor recovery-table}'s usage errors. A run end to end costs more than this suite's
 * budget allows (the Europarl text alone loads in seconds): the documented runs in
 * cli/docs/recovery-table.md are its check.
 */
class RecoveryTableCommandTest {

  @Test
  void usageErrors() {
    String model = TinyReferenceModel.shipped().toString();
    CliRun r = CliRun.of("recovery-table", "--model", model, "--only", "quant,moe");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("unknown section 'moe'"), r.err());
    r = CliRun.of("recovery-table", "--model", model, "--max-bytes", "500");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--max-bytes must be at least 1000"), r.err());
  }
}
