package dev.compactor.cli.factorize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor factorize} on the shipped tiny Llama: usage errors, the JSON report checked
 * against the written checkpoint, provenance, and SVD-LLM on a small calibration text.
 */
class FactorizeCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  private CliRun factorize(String... extra) {
    List<String> a =
        new ArrayList<>(List.of("factorize", "--model", TinyReferenceModel.shipped().toString()));
    a.addAll(List.of(extra));
    return CliRun.of(a.toArray(String[]::new));
  }

  private void usageError(String expected, String... args) {
    CliRun r = factorize(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertFalse(Files.exists(tmp.resolve("out")), "nothing is written on a usage error");
  }

  @Test
  void usageErrors() {
    String out = tmp.resolve("out").toString();
    usageError("exactly one of --ratio F and --energy F", "--out", out);
    usageError(
        "exactly one of --ratio F and --energy F",
        "--ratio",
        "0.5",
        "--energy",
        "0.9",
        "--out",
        out);
    usageError("ratio must be in (0, 1)", "--ratio", "1.5", "--out", out);
    usageError("expected svd or svd_llm", "--ratio", "0.5", "--method", "asvd", "--out", out);
    usageError(
        "no decoder linear is called 'qproj'",
        "--ratio",
        "0.5",
        "--method",
        "svd",
        "--linears",
        "qproj",
        "--no-eval",
        "--out",
        out);
  }

  @Test
  void plainSvdReportMatchesTheWrittenModel() throws Exception {
    Path out = tmp.resolve("svd");
    CliRun r =
        factorize(
            "--ratio",
            "0.5",
            "--method",
            "svd",
            "--linears",
            "q_proj,down_proj",
            "--max-bytes",
            "2000",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("layer 4/4: 2 linears"), r.err());
    JsonNode j = JSON.readTree(r.out());
    assertEquals("svd", j.get("method").asText());
    assertEquals(8, j.get("factorized_linears").asInt());
    ModelConfig c = ModelConfig.read(out);
    // q_proj 128x128: floor(0.5 * 16384 / 256) = 32; down_proj 128x512: floor(0.5 * 65536 / 640)
    assertEquals(32, c.lowRank("model.layers.2.self_attn.q_proj"));
    assertEquals(51, c.lowRank("model.layers.2.mlp.down_proj"));
    assertEquals(8, c.lowRank().size());
    try (TensorSource src = Checkpoints.open(out)) {
      long stored = 0;
      for (String n : src.names()) {
        stored += src.info(n).numel();
      }
      assertEquals(j.get("parameters_after").asLong(), stored);
    }
    JsonNode q = j.get("quality");
    assertTrue(q.get("kl_divergence").asDouble() > 0, q.toString());
    assertTrue(q.get("perplexity_after").asDouble() > q.get("perplexity_before").asDouble() * 0.9);
    JsonNode prov = JSON.readTree(Files.readString(out.resolve("compactor.json")));
    assertEquals("factorize", prov.get("stage").asText());
    assertTrue(prov.get("loads_in").asText().startsWith("compactor only"));
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    for (String[] stage :
        new String[][] {
          {"prune", "--model", out.toString(), "--method", "magnitude", "--sparsity", "0.5"},
          {"prune", "--model", out.toString(), "--drop-layers", "1"},
          {
            "quantize",
            "--model",
            out.toString(),
            "--method",
            "rtn",
            "--bits",
            "8",
            "--group-size",
            "32",
            "--export",
            "gguf:q8_0"
          }
        }) {
      List<String> a = new ArrayList<>(List.of(stage));
      a.addAll(List.of("--out", tmp.resolve("refused-" + stage[0] + a.size()).toString()));
      CliRun refused = CliRun.of(a.toArray(String[]::new));
      assertTrue(refused.code() != 0, String.join(" ", stage));
      assertTrue(
          refused.err().contains(ModelConfig.LOW_RANK_REFUSAL),
          String.join(" ", stage) + ": " + refused.err());
    }
  }

  @Test
  void svdLlmCalibratesOnTheGivenTextAndMergesToDense() throws Exception {
    String[] words = {"the", "parliament", "council", "member", "states", "report", "vote"};
    Random rnd = new Random(3);
    StringBuilder b = new StringBuilder();
    while (b.length() < 20000) {
      b.append(words[rnd.nextInt(words.length)]).append(rnd.nextInt(9) == 0 ? ".\n" : " ");
    }
    Path text = Files.writeString(tmp.resolve("cal.txt"), b.toString());
    Path out = tmp.resolve("llm");
    CliRun r =
        factorize(
            "--energy",
            "0.9",
            "--calibration",
            text.toString(),
            "--samples",
            "8",
            "--seq-len",
            "64",
            "--merge",
            "--no-eval",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode j = JSON.readTree(r.out());
    assertEquals("svd_llm", j.get("method").asText());
    assertEquals(8 * 64, j.get("calibration_tokens").asLong());
    assertTrue(j.get("merged").asBoolean());
    assertEquals(j.get("parameters_before").asLong(), j.get("parameters_after").asLong());
    assertFalse(ModelConfig.read(out).factorized());
    try (TensorSource src = Checkpoints.open(out)) {
      assertTrue(src.contains("model.layers.0.self_attn.q_proj.weight"));
    }
  }
}
