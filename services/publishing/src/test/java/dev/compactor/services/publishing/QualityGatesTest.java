package dev.compactor.services.publishing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.recipe.PublishParams.Gates;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QualityGatesTest {
  static final Map<String, Double> METRICS =
      Map.of(
          "perplexity", 11.0,
          "baselinePerplexity", 10.0,
          "klDivergence", 0.02,
          "top1Agreement", 0.9,
          "sizeBytes", 300.0,
          "baselineSizeBytes", 1000.0);

  @Test
  void passingGatesReportNothing() {
    assertEquals(List.of(), QualityGates.failures(new Gates(0.11, 0.02, 0.9, 0.3), METRICS));
    assertEquals(List.of(), QualityGates.failures(new Gates(null, null, null, null), METRICS));
  }

  @Test
  void eachFailedGateSaysByHowMuch() {
    List<String> f = QualityGates.failures(new Gates(0.05, 0.01, 0.95, 0.25), METRICS);
    assertEquals(4, f.size(), f.toString());
    assertTrue(f.get(0).contains("rose 10.00%") && f.get(0).contains("over by 5.00 points"));
    assertTrue(f.get(1).contains("over by 0.01000"), f.get(1));
    assertTrue(f.get(2).contains("short by 0.0500"), f.get(2));
    assertTrue(f.get(3).contains("size ratio 0.3000") && f.get(3).contains("over by 0.0500"));
    String size =
        QualityGates.failures(new Gates(null, null, null, 0.25), METRICS, "gguf:model-q4_k.gguf")
            .get(0);
    assertTrue(size.contains("300 bytes of stored form gguf:model-q4_k.gguf"), size);
  }

  @Test
  void aGateOnAnUnmeasuredMetricIsAnError() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QualityGates.failures(new Gates(null, 0.1, null, null), Map.of("perplexity", 3.0)));
    assertTrue(e.getMessage().contains("klDivergence"), e.getMessage());
  }

  @Test
  void theTaskGateChecksEveryTaskAgainstItsBaseline() {
    Map<String, Double> m =
        Map.of(
            "task.a.acc", 0.60,
            "task.a.baselineAcc", 0.62,
            "task.b.acc", 0.40,
            "task.b.baselineAcc", 0.50);
    Gates g = new Gates(null, null, null, null, 0.05);
    List<String> f = QualityGates.failures(g, m);
    assertEquals(1, f.size(), f.toString());
    assertTrue(f.get(0).contains("b accuracy 0.4000 against the baseline's 0.5000"), f.get(0));
    assertEquals(List.of(), QualityGates.failures(new Gates(null, null, null, null, 0.1), m));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> QualityGates.failures(g, METRICS));
    assertTrue(e.getMessage().contains("needs task scores"), e.getMessage());
  }

  @Test
  void energyAndDecodeSpeedGatesCompareWithTheBaselineAndQuoteTheEnergyLabel() {
    Map<String, Double> m =
        Map.of(
            "energy.joulesPerToken", 0.006,
            "energy.baselineJoulesPerToken", 0.010,
            "decodeTokensPerSecond", 150.0,
            "baselineDecodeTokensPerSecond", 100.0);
    String label = "estimated: cpu-time × W/core: process CPU time × 4.00 W per busy CPU";
    Gates pass = new Gates(null, null, null, null, null, 0.6, 1.5);
    assertEquals(List.of(), QualityGates.failures(pass, m, null, label));
    Gates fail = new Gates(null, null, null, null, null, 0.5, 2.0);
    List<String> f = QualityGates.failures(fail, m, null, label);
    assertEquals(2, f.size(), f.toString());
    assertTrue(f.get(0).contains("ratio 0.6000, allowed 0.5000"), f.get(0));
    assertTrue(f.get(0).contains("(estimated: cpu-time"), f.get(0));
    assertTrue(f.get(1).contains("speedup 1.5000, required 2.0000"), f.get(1));

    List<String> notes = QualityGates.notes(pass, m, label);
    assertEquals(2, notes.size(), notes.toString());
    assertTrue(notes.get(0).contains("on ESTIMATED energy figures"), notes.get(0));
    assertTrue(notes.get(0).contains("not a reading of a power counter"), notes.get(0));
    String measured = QualityGates.notes(pass, m, "measured: RAPL package energy").get(0);
    assertTrue(measured.contains("on measured energy figures"), measured);

    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> QualityGates.failures(pass, METRICS, null, null));
    assertTrue(e.getMessage().contains("energy.joulesPerToken"), e.getMessage());
  }
}
