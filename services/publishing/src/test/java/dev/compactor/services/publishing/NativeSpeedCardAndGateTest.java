package dev.compactor.services.publishing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

/**
 * The model card's native speed table (engine, threads, F32 reference) and the {@code
 * min_native_decode_speedup} gate, which every GGUF file must pass.
 */
class NativeSpeedCardAndGateTest {

  private static Map<String, Double> metrics() {
    Map<String, Double> m = new TreeMap<>();
    m.put("sizeBytes", 100.0);
    m.put("baselineSizeBytes", 400.0);
    put(m, "model-q4_0.gguf", 900, 500, 2000, 1500);
    put(m, "model-q8_0.gguf", 600, 500, 1800, 1500);
    return m;
  }

  private static void put(
      Map<String, Double> m, String file, double decode, double base, double pre, double preBase) {
    String k = "native." + file + ".";
    m.put(k + "decodeTokensPerSecond", decode);
    m.put(k + "baselineDecodeTokensPerSecond", base);
    m.put(k + "prefillTokensPerSecond", pre);
    m.put(k + "baselinePrefillTokensPerSecond", preBase);
    m.put(k + "decodeSpeedup", decode / base);
    m.put(k + "prefillSpeedup", pre / preBase);
    m.put(k + "threads", 2.0);
    m.put(k + "promptTokens", 32.0);
    m.put(k + "decodeTokens", 32.0);
    m.put(k + "repeats", 3.0);
  }

  @Test
  void cardShowsEachFileAgainstTheF32Reference(@TempDir Path dir) throws Exception {
    Files.writeString(dir.resolve("model.safetensors"), "x");
    String label = "engine native-gguf: Compactor's GgufLlama ..., 2 thread(s) of 2 CPU(s)";
    EvaluationReport report =
        new EvaluationReport(
            "job", "a", "b", metrics(), "x", "safetensors", List.of(), null, null, null, label);
    String card =
        ModelCard.render("t", 1, "job", "name: t", report, StoredForms.scan(dir), List.of());
    assertTrue(card.contains("### Native speed of the GGUF files"), card);
    assertTrue(card.contains("engine `native-gguf`"), card);
    assertTrue(card.contains("Measured with: " + label + "."), card);
    assertTrue(
        card.contains(
            "| `model-q4_0.gguf` | 2 | 32 | 32 | 2,000 | 1,500 | 900.0000 | 500.0000 | 1.8000× |"),
        card);
    assertTrue(card.indexOf("model-q8_0.gguf` | 2") > card.indexOf("model-q4_0.gguf` | 2"), card);
  }

  @Test
  void gateChecksEveryGgufFile() {
    Map<String, Double> m = metrics();
    Gates held = new Gates(null, null, null, null, null, null, null, 1.1);
    assertEquals(List.of(), QualityGates.failures(held, m));
    assertEquals(2, QualityGates.notes(held, m, null).size());
    Gates strict = new Gates(null, null, null, null, null, null, null, 1.5);
    List<String> f = QualityGates.failures(strict, m);
    assertEquals(1, f.size(), f.toString());
    assertTrue(
        f.get(0)
            .startsWith(
                "min_native_decode_speedup: model-q8_0.gguf decodes 600.0 tokens/s natively"
                    + " against the original's 500.0 as an F32 GGUF, speedup 1.2000, required"
                    + " 1.5000"),
        f.get(0));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> QualityGates.failures(strict, Map.of("sizeBytes", 1.0)));
    assertTrue(e.getMessage().contains("add native_speed: true"), e.getMessage());
  }
}
