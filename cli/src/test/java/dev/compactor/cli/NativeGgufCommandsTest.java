package dev.compactor.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code generate --gguf} and {@code bench-decode} on tiny-llama-v1 exported to GGUF. */
class NativeGgufCommandsTest {

  @TempDir Path tmp;

  private static String[] run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
    return new String[] {
      out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)
    };
  }

  @Test
  void greedyGenerationFromAnF32GgufEqualsTheDjlModel() throws Exception {
    Path model = TinyReferenceModel.shipped();
    Path gguf = tmp.resolve("f32.gguf");
    GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
    String[] common = {"--prompt", "The Commission", "--max-tokens", "20", "--temperature", "0"};
    JsonNode djl =
        json(run(concat(new String[] {"generate", "--model", model.toString(), "--json"}, common)));
    JsonNode nat =
        json(
            run(
                concat(
                    new String[] {
                      "generate", "--model", model.toString(), "--gguf", gguf.toString(), "--json"
                    },
                    common)));
    assertEquals(20, nat.get("generatedTokens").asInt());
    assertEquals(djl.get("text").asText(), nat.get("text").asText());
    assertTrue(nat.get("decodeTokensPerSecond").asDouble() > 0, nat.toString());
  }

  @Test
  void benchDecodePrintsBothSpeeds() throws Exception {
    Path gguf = tmp.resolve("q4_0.gguf");
    GgufExport.export(
        TinyReferenceModel.shipped(),
        LlamaFileType.Q4_0,
        Map.of("output.weight", GgmlType.Q4_0),
        Map.of(),
        gguf);
    JsonNode j =
        json(
            run(
                "bench-decode",
                "--gguf",
                gguf.toString(),
                "--tokens",
                "8",
                "--prompt-tokens",
                "4",
                "--threads",
                "2",
                "--json"));
    assertEquals(8, j.get("decodeTokens").asInt());
    assertTrue(j.get("prefillTokensPerSecond").asDouble() > 0, j.toString());
    assertTrue(j.get("prefillTokenByTokenTokensPerSecond").asDouble() > 0, j.toString());
    assertTrue(j.get("decodeTokensPerSecond").asDouble() > 0, j.toString());
    assertTrue(j.get("weightMegabytesPerToken").asDouble() > 0.3, j.toString());
    String text = run("bench-decode", "--gguf", gguf.toString(), "--tokens", "4")[0];
    assertTrue(text.matches("(?s).*decode 4 tokens at [0-9.]+ tokens/s.*"), text);
    assertTrue(text.matches("(?s).*tokens/s batched, [0-9.]+ tokens/s token by token.*"), text);
  }

  private static JsonNode json(String[] outErr) throws Exception {
    return new ObjectMapper().readTree(outErr[0]);
  }

  private static String[] concat(String[] a, String[] b) {
    String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }
}
