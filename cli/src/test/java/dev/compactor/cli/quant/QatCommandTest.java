package dev.compactor.cli.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The qat command's argument checks: each mistake is refused before any work, with the reason. */
class QatCommandTest {

  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    // hidden 96: group 64 and 128 do not divide it, 32 does
    model = tmp.resolve("m96");
    try (Transformer t =
        Transformer.randomInit(ModelConfig.llama(257, 96, 192, 1, 3, 3, 16), 1, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
  }

  private static CliRun qat(String... extra) {
    List<String> a = new ArrayList<>(List.of("qat", "--model", model.toString()));
    a.addAll(List.of(extra));
    a.add("--out");
    a.add(tmp.resolve("out-" + System.nanoTime()).toString());
    return CliRun.of(a.toArray(String[]::new));
  }

  private static void refused(int code, String expected, String... args) {
    CliRun r = qat(args);
    assertEquals(code, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertEquals("", r.out());
  }

  @Test
  void bitsInitAndFormatMustBeKnown() {
    refused(2, "missing required option --bits", "--group-size", "32");
    refused(2, "--bits must be 2, 3, 4 or 8, found 5", "--bits", "5");
    refused(2, "--init must be rtn, gptq or best, found 'awq'", "--bits", "4", "--init", "awq");
    refused(2, "--format must be dequantized", "--bits", "4", "--format", "onnx");
  }

  @Test
  void theGroupMustDivideTheModelsWidths() {
    refused(2, "group size 64 does not divide", "--bits", "4", "--group-size", "64");
    refused(
        2,
        "group size must be -1 (per output channel), 32, 64 or 128",
        "--bits",
        "4",
        "--group-size",
        "48");
  }

  @Test
  void lowBitExportsAreRefusedExceptTheDequantizedCheckpoint() {
    refused(
        1,
        "not supported yet: 3-bit export to compressed-tensors",
        "--bits",
        "3",
        "--group-size",
        "32",
        "--format",
        "compressed-tensors");
    refused(1, "not supported yet: 2-bit export to gguf", "--bits", "2", "--format", "gguf");
  }
}
