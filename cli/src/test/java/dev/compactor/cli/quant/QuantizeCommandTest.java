package dev.compactor.cli.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The quantize command's argument validation: every mistake is exit code 2 with the reason. */
class QuantizeCommandTest {

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

  private static CliRun quantize(String... extra) {
    List<String> a = new ArrayList<>(List.of("quantize", "--model", model.toString()));
    a.addAll(List.of(extra));
    if (!a.contains("--out")) {
      a.add("--out");
      a.add(tmp.resolve("out-" + System.nanoTime()).toString());
    }
    return CliRun.of(a.toArray(String[]::new));
  }

  private static void usageError(String expected, String... args) {
    CliRun r = quantize(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertTrue(r.err().contains("usage: compactor quantize --model DIR --method"), r.err());
    assertEquals("", r.out());
  }

  @Test
  void methodMustBeKnown() {
    usageError("unknown method 'int3'", "--method", "int3", "--bits", "4");
    usageError("missing required option --method", "--bits", "4");
  }

  @Test
  void bitsMustBeFourOrEight() {
    usageError("--bits must be 4 or 8, found 3", "--method", "rtn", "--bits", "3");
    usageError("missing required option --bits", "--method", "gptq");
    usageError("expects an integer", "--method", "rtn", "--bits", "four");
    usageError("fp8 stores 8-bit codes", "--method", "fp8", "--bits", "4");
    usageError("nf4 stores 4-bit codes", "--method", "nf4", "--bits", "8");
  }

  @Test
  void groupSizeMustBeSupportedAndDivideTheModelsWidths() {
    usageError(
        "--group-size must be -1, 32, 64 or 128, found 100",
        "--method",
        "rtn",
        "--bits",
        "4",
        "--group-size",
        "100");
    usageError(
        "does not divide the model's linear input width 96",
        "--method",
        "rtn",
        "--bits",
        "4",
        "--group-size",
        "64");
    // the 4-bit default group of 128 does not fit hidden 96 either
    usageError("group size 128 does not divide", "--method", "awq", "--bits", "4");
    usageError("one scale per output channel", "--method", "fp8", "--group-size", "32");
  }

  @Test
  void exportsMustBeKnownAndFitTheMethod() {
    usageError(
        "unknown format 'onnx'", "--method", "rtn", "--bits", "8", "--export", "safetensors,onnx");
    usageError(
        "unknown GGUF file type 'q3_k'", "--method", "rtn", "--bits", "8", "--export", "gguf:q3_k");
    usageError(
        "nf4 is not supported there yet", "--method", "nf4", "--export", "compressed-tensors");
  }

  @Test
  void inputsAndOutputAreChecked() throws Exception {
    usageError(
        "--calibration: expected a text file",
        "--method",
        "gptq",
        "--bits",
        "4",
        "--group-size",
        "32",
        "--calibration",
        tmp.resolve("missing.txt").toString());
    Path full = Files.createDirectories(tmp.resolve("full"));
    Files.writeString(full.resolve("x"), "x");
    usageError(
        "must be absent or empty", "--method", "rtn", "--bits", "8", "--out", full.toString());
    CliRun r =
        CliRun.of(
            "quantize",
            "--model",
            tmp.resolve("nope").toString(),
            "--method",
            "rtn",
            "--bits",
            "8",
            "--out",
            tmp.resolve("o").toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("expected a model directory with config.json"), r.err());
    usageError("unknown option --groupsize", "--method", "rtn", "--bits", "8", "--groupsize", "32");
    assertFalse(Files.exists(tmp.resolve("o")), "nothing is written on a usage error");
  }

  private static QuantizeRequest parse(String... extra) throws Exception {
    List<String> a = new ArrayList<>(List.of("--model", model.toString()));
    a.addAll(List.of(extra));
    a.addAll(List.of("--out", tmp.resolve("p-" + System.nanoTime()).toString()));
    return QuantizeRequest.parse(a.toArray(String[]::new));
  }

  @Test
  void gridDefaultIsTheRecipesSymmetricOneWithAsymmetricAsTheOptOut() throws Exception {
    assertTrue(
        parse("--method", "rtn", "--bits", "4", "--group-size", "32").quantization().symmetric());
    assertTrue(parse("--method", "gptq", "--bits", "8").quantization().symmetric());
    assertTrue(parse("--method", "rtn", "--bits", "8", "--symmetric").quantization().symmetric());
    assertFalse(parse("--method", "rtn", "--bits", "8", "--asymmetric").quantization().symmetric());
    // awq keeps its zero points, as in recipes (QuantizeParams.defaultSymmetric)
    assertFalse(parse("--method", "awq", "--bits", "8").quantization().symmetric());
    assertTrue(parse("--method", "awq", "--bits", "8", "--symmetric").quantization().symmetric());
    usageError(
        "--symmetric and --asymmetric exclude each other",
        "--method",
        "rtn",
        "--bits",
        "8",
        "--symmetric",
        "--asymmetric");
    usageError("asymmetric is not possible", "--method", "fp8", "--asymmetric");
  }
}
