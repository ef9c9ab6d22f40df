package dev.compactor.services.publishing;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.recipe.PublishParams.Gates;
import dev.compactor.services.evaluation.EvaluationReport;
import dev.compactor.services.evaluation.StoredForms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The model card shows energy with its label, the speed sweep, and what an energy gate used. */
class ModelCardEnergyTest {

  @Test
  void energyRowsSayEstimatedAndTheSweepIsATable(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("model.safetensors"), "x");
    Map<String, Double> m = new TreeMap<>();
    m.put("perplexity", 5.0);
    m.put("baselinePerplexity", 4.9);
    m.put("sizeBytes", 100.0);
    m.put("baselineSizeBytes", 200.0);
    m.put("decodeTokensPerSecond", 300.0);
    m.put("baselineDecodeTokensPerSecond", 200.0);
    m.put("energy.joulesPerToken", 0.00123456);
    m.put("energy.baselineJoulesPerToken", 0.002);
    for (int b : new int[] {4, 1}) {
      String k = "speed.b" + b + ".c32.";
      m.put(k + "prefillTokensPerSecond", 1000.0 * b);
      m.put(k + "baselinePrefillTokensPerSecond", 700.0 * b);
      m.put(k + "decodeTokensPerSecond", 300.0 * b);
      m.put(k + "baselineDecodeTokensPerSecond", 200.0 * b);
      m.put(k + "joulesPerToken", 0.00123456 / b);
      m.put(k + "baselineJoulesPerToken", 0.002 / b);
    }
    String label = "estimated: cpu-time × W/core: process CPU time × 4.00 W per busy CPU";
    EvaluationReport report =
        new EvaluationReport(
            "job", "a", "b", m, "builtin:europarl", "safetensors", List.of(), "DJL", null, label);
    Gates gates = new Gates(null, null, null, null, null, 0.9, null);
    String card =
        ModelCard.render(
            "t",
            1,
            "job",
            "name: t",
            report,
            StoredForms.scan(dir),
            List.of(),
            QualityGates.notes(gates, m, label));
    assertTrue(
        card.contains("| Energy per generated token (J) (ESTIMATED) | 0.001235 | 0.002000 |"),
        card);
    assertTrue(card.contains("Energy " + label + "."), card);
    int b1 = card.indexOf("| 1 | 32 | 1,000 | 700.0000 | 300.0000 | 200.0000 |  | 0.001235 |");
    int b4 = card.indexOf("| 4 | 32 | 4,000 | 2,800 | 1,200 | 800.0000 |  | 0.0003086 |");
    assertTrue(b1 > 0 && b4 > b1, "batch-ordered speed rows in\n" + card);
    assertTrue(card.contains("J/token (ESTIMATED)"), card);
    assertTrue(card.contains("## Gates\n\n- max_energy_per_token_ratio 0.9000 held"), card);
    assertTrue(card.contains("ESTIMATED energy figures"), card);

    String plain =
        ModelCard.render(
            "t",
            1,
            "job",
            "name: t",
            new EvaluationReport("job", "a", "b", Map.of("sizeBytes", 1.0), "x"),
            StoredForms.scan(dir),
            List.of());
    assertFalse(plain.contains("Speed by batch") || plain.contains("## Gates"), plain);
  }
}
