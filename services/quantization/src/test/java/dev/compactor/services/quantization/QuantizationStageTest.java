package dev.compactor.services.quantization;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizationStageTest {
  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    model = TestModels.randomLlama(tmp.resolve("model"), 2, 9);
  }

  private static StageResult run(String name, String params) throws Exception {
    StageContext ctx =
        StageContext.builder(TestModels.request("quantize", params).build())
            .inputDir(model)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    return new QuantizationStage().run(ctx);
  }

  @Test
  void int4GroupedWithGgufExport() throws Exception {
    StageResult r =
        run(
            "int4",
            "{\"method\":\"rtn\",\"bits\":4,\"group_size\":32,\"export\":[\"safetensors\",\"gguf\"]}");
    assertTrue(Files.exists(r.outputDir().resolve("model-q4_k.gguf")));
    JsonNode qc =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .get("quantization_config");
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(32, qc.get("group_size").asInt());
    // 4-bit codes + one fp16 scale per 32 weights = 4.5 bits per weight instead of 32
    assertEquals(
        r.metrics().get("quantizedParameters") * 4.5 / 8, r.metrics().get("quantizedWeightBytes"));
    assertTrue(
        r.metrics().get("quantizedModelBytes") < r.metrics().get("sourceWeightBytes"),
        r.metrics().toString());
    assertEquals(1.0, r.metrics().get("ggufFiles"));
  }

  @Test
  void int8PerChannelByDefaultSymmetric() throws Exception {
    StageResult r = run("int8", "{\"method\":\"rtn\",\"bits\":8,\"group_size\":-1}");
    JsonNode qc =
        new ObjectMapper()
            .readTree(r.outputDir().resolve("config.json").toFile())
            .get("quantization_config");
    assertEquals(-1, qc.get("group_size").asInt());
    assertTrue(qc.get("symmetric").asBoolean());
  }

  @Test
  void gptqIsNotSupportedYet() {
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> run("gptq", "{\"method\":\"gptq\",\"bits\":4,\"group_size\":128}"));
    assertTrue(e.getMessage().startsWith("not supported yet"), e.getMessage());
  }
}
