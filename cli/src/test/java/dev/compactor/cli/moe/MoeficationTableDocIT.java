package dev.compactor.cli.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.compactor.cli.quant.CliRun;
import dev.compactor.cli.quant.QualityTableDocIT;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keeps {@code cli/docs/moefication-table.md} true: reruns the documented {@code compactor moefy
 * ... --table} on the shipped tiny model and compares its table with the document's first block
 * under {@link QualityTableDocIT}'s rules (weights by hash, run time ignored, integers exact), with
 * {@link #RELATIVE} slack on decimals: the clusters come from k-means and the routers from AdamW
 * training, so a CPU whose float kernels round differently (AVX2 vs AVX-512) can tip a neuron's
 * cluster and move a figure by more than the last digit.
 */
class MoeficationTableDocIT {

  /** Relative slack on decimal figures (the FLOP counts are integers and stay exact). */
  static final double RELATIVE = 0.02;

  static final Path DOC = Path.of("docs/moefication-table.md");
  static final Path MODEL_DIR = Path.of("..", "models", "tiny-llama-v1");

  @TempDir Path tmp;

  @Test
  void theDocumentedTableIsWhatTheCommandPrints() throws Exception {
    List<String> doc =
        QualityTableDocIT.comparable(
            QualityTableDocIT.docTable(Files.readString(DOC, StandardCharsets.UTF_8)));
    Assumptions.assumeTrue(
        Files.isRegularFile(MODEL_DIR.resolve("model.safetensors")),
        "the shipped tiny model is not in this checkout at " + MODEL_DIR);
    CliRun r =
        CliRun.of(
            "moefy",
            "--model",
            MODEL_DIR.toString(),
            "--experts",
            "8",
            "--k",
            "1,2,4,8",
            "--out",
            tmp.toString(),
            "--table");
    assertEquals(0, r.code(), r.err());
    List<String> now = QualityTableDocIT.comparable(r.out().lines().toList());
    QualityTableDocIT.assertSameTable(
        DOC, doc, now, RELATIVE, "./compactor moefy ... --table", r.out());
  }
}
