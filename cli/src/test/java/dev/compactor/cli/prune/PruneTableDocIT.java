package dev.compactor.cli.prune;

import static dev.compactor.cli.quant.QualityTableDocIT.assertSameTable;
import static dev.compactor.cli.quant.QualityTableDocIT.comparable;
import static dev.compactor.cli.quant.QualityTableDocIT.docTable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.cli.quant.CliRun;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Keeps {@code cli/docs/prune-table.md} true: runs {@code compactor prune-table} as the document
 * says and compares the quality block (everything above the speed block, whose timings belong to
 * the machine that ran it) with the document line for line. Decimals may differ by 2 % of the
 * document's value: a pruning mask is a ranking, and a CPU's float kernels can swap two nearly
 * equal scores, and the recovery rows are trained, so a figure can move by more than rounding.
 * Integers (parameters, bytes), labels and the field count stay exact. The speed block is measured
 * with one latency probe per row instead of three ({@code --latency-repeats 1}): its figures are
 * never compared, and one probe still runs the whole latency path for every row.
 */
class PruneTableDocIT {

  static final Path DOC = Path.of("docs/prune-table.md");
  static final Path MODEL_DIR = Path.of("..", "models", "tiny-llama-v1");
  static final double RELATIVE = 0.02;

  /** The lines above the speed block. */
  static List<String> quality(List<String> lines) {
    int end = 0;
    while (end < lines.size() && !lines.get(end).startsWith(PruneTableCommand.SPEED_HEADER)) {
      end++;
    }
    return lines.subList(0, end);
  }

  @Test
  void theDocumentedTableIsWhatTheCommandPrints() throws Exception {
    List<String> doc = quality(comparable(docTable(Files.readString(DOC, StandardCharsets.UTF_8))));
    Assumptions.assumeTrue(
        Files.isRegularFile(MODEL_DIR.resolve("model.safetensors")),
        "the shipped tiny model is not in this checkout at " + MODEL_DIR);
    CliRun r =
        CliRun.of(
            "prune-table",
            "--model",
            MODEL_DIR.toString(),
            "--max-bytes",
            "20000",
            "--latency-repeats",
            "1");
    assertEquals(0, r.code(), r.err());
    List<String> all = r.out().lines().toList();
    assertTrue(
        all.stream().anyMatch(l -> l.startsWith(PruneTableCommand.SPEED_HEADER + " 1 probe,")),
        "the speed block is printed:\n" + r.out());
    assertSameTable(
        DOC,
        doc,
        quality(comparable(all)),
        RELATIVE,
        "./compactor prune-table --max-bytes 20000",
        r.out());
  }
}
