package dev.compactor.cli.moe;

import static dev.compactor.cli.quant.QualityTableDocIT.comparable;
import static dev.compactor.cli.quant.QualityTableDocIT.docTable;
import static dev.compactor.cli.quant.QualityTableDocIT.sameLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
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
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            new String[] {"moe-table", "--model", MODEL_DIR.toString()},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    String printed = out.toString(StandardCharsets.UTF_8);
    assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
    List<String> now = comparable(printed.lines().toList());
    assertEquals(doc.get(0), now.get(0), DOC + " was made on other weights: rerun and paste");
    for (int i = 0; i < Math.max(doc.size(), now.size()); i++) {
      String d = i < doc.size() ? doc.get(i) : "<missing>";
      String n = i < now.size() ? now.get(i) : "<missing>";
      assertTrue(
          sameLine(d, n),
          "line "
              + (i + 1)
              + " of "
              + DOC
              + " differs from ./compactor moe-table:\n"
              + d
              + "\n"
              + n
              + "\npaste the new output if the change is intended. Whole output:\n"
              + printed);
    }
  }
}
