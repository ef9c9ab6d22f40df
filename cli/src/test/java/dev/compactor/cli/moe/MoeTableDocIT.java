package dev.compactor.cli.moe;

import static dev.compactor.cli.quant.QualityTableDocIT.assertSameTable;
import static dev.compactor.cli.quant.QualityTableDocIT.comparable;
import static dev.compactor.cli.quant.QualityTableDocIT.docTable;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.compactor.cli.quant.CliRun;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Keeps {@code cli/docs/moe-table.md} true: runs {@code compactor moe-table --model
 * models/tiny-mixtral-v1} as the document says and compares its output with the document's block
 * line for line, with the slack {@link dev.compactor.cli.quant.QualityTableDocIT} allows (the
 * model's path, the run time, one unit in a decimal's last printed digit).
 */
class MoeTableDocIT {

  static final Path DOC = Path.of("docs/moe-table.md");
  static final Path MODEL_DIR = Path.of("..", "models", "tiny-mixtral-v1");

  @Test
  void theDocumentedTableIsWhatTheCommandPrints() throws Exception {
    List<String> doc = comparable(docTable(Files.readString(DOC, StandardCharsets.UTF_8)));
    Assumptions.assumeTrue(
        Files.isRegularFile(MODEL_DIR.resolve("model.safetensors")),
        "the shipped tiny MoE model is not in this checkout at " + MODEL_DIR);
    CliRun r = CliRun.of("moe-table", "--model", MODEL_DIR.toString());
    assertEquals(0, r.code(), r.err());
    List<String> now = comparable(r.out().lines().toList());
    assertSameTable(DOC, doc, now, 0, "./compactor moe-table", r.out());
  }
}
