package dev.compactor.cli.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.codebook.CodebookQuantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code quantize --method codebook}: usage errors, and one real run read back. */
class CodebookQuantizeCommandTest {

  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void model() throws Exception {
    model = tmp.resolve("m");
    try (Transformer t =
        Transformer.randomInit(ModelConfig.llama(257, 64, 96, 1, 2, 2, 16), 3, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
  }

  private static void usageError(String expected, String... args) {
    String[] a = new String[args.length + 7];
    a[0] = "quantize";
    a[1] = "--model";
    a[2] = model.toString();
    a[3] = "--method";
    a[4] = "codebook";
    a[5] = "--out";
    a[6] = tmp.resolve("o" + System.nanoTime()).toString();
    System.arraycopy(args, 0, a, 7, args.length);
    CliRun r = CliRun.of(a);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
  }

  @Test
  void refusesWhatItCannotDo() {
    usageError("missing required option --bits (2, 3 or 4)");
    usageError("--bits must be 2, 3 or 4 for codebook, found 8", "--bits", "8");
    usageError("unknown sensitivity 'gram'", "--bits", "4", "--sensitivity", "gram");
    usageError("--kmeans: expected exact or lloyd", "--bits", "4", "--kmeans", "fast");
    usageError(
        "not supported: codebook quantization exported as gguf:q4_0",
        "--bits",
        "4",
        "--export",
        "gguf:q4_0");
    usageError(
        "not supported: codebook quantization exported as compressed-tensors",
        "--bits",
        "4",
        "--export",
        "safetensors,compressed-tensors");
  }

  @Test
  void writesACheckpointThatOpensDequantized() throws Exception {
    Path out = tmp.resolve("run");
    CliRun r =
        CliRun.of(
            "quantize",
            "--model",
            model.toString(),
            "--method",
            "codebook",
            "--bits",
            "3",
            "--sensitivity",
            "uniform",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("codebook layers: 1/1"), r.err());
    JsonNode j = new ObjectMapper().readTree(r.out());
    assertEquals("codebook", j.get("method").asText());
    assertEquals(7, j.get("quantized_linears").asInt());
    long file = Files.size(out.resolve("codebook/model.safetensors"));
    assertEquals(file, j.get("weight_file_bytes").asLong());
    JsonNode prov = new ObjectMapper().readTree(out.resolve("compactor.json").toFile());
    assertEquals("uniform", prov.get("sensitivity").asText());
    assertTrue(prov.at("/input/sha256").size() > 0);
    try (TensorSource src = Checkpoints.open(model);
        TensorSource cb = Checkpoints.open(out.resolve("codebook"))) {
      String name = "model.layers.0.mlp.down_proj.weight";
      float[] expected =
          CodebookQuantizer.quantize(src.readFloats(name), null, 64, 96, 3, 50, true).dequantize();
      assertArrayEquals(expected, cb.readFloats(name));
    }
    CliRun again =
        CliRun.of(
            "quantize",
            "--model",
            out.resolve("codebook").toString(),
            "--method",
            "rtn",
            "--bits",
            "4",
            "--group-size",
            "32",
            "--export",
            "compressed-tensors",
            "--out",
            tmp.resolve("ct").toString());
    assertTrue(again.code() != 0, again.err());
    assertTrue(
        again.err().contains("not supported: codebook checkpoint")
            && again.err().contains("exported as compressed-tensors"),
        again.err());
  }
}
