package dev.compactor.cli.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor lora}: usage errors (exit 2, nothing written), and a short recovery of the
 * shipped tiny model pruned by Wanda whose adapter, read back by {@code eval --adapter}, scores
 * exactly what the merged model scores.
 */
class LoraCommandTest {

  @TempDir Path tmp;

  private void usageError(String expected, String... extra) {
    List<String> a = new ArrayList<>(List.of("lora", "--model", tiny(), "--teacher", tiny()));
    a.addAll(List.of(extra));
    a.addAll(List.of("--out", tmp.resolve("out").toString()));
    CliRun r = CliRun.of(a.toArray(String[]::new));
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertTrue(r.err().contains("usage: compactor lora --model"), r.err());
    assertFalse(Files.exists(tmp.resolve("out")), "nothing is written on a usage error");
  }

  private static String tiny() {
    return TinyReferenceModel.shipped().toString();
  }

  @Test
  void valuesAreChecked() {
    usageError("--rank must be >= 1, found 0", "--rank", "0");
    usageError("--kl-weight must be in [0, 1], found 2.0", "--kl-weight", "2");
    usageError("--steps expects an integer, found 'many'", "--steps", "many");
    usageError("target modules repeat", "--targets", "q_proj,q_proj");
    usageError("unknown option --rnak", "--rnak", "8");
  }

  @Test
  void aShortRecoveryExportsAnAdapterThatEvalReadsBack() throws Exception {
    Path text = tmp.resolve("text.txt");
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 40; i++) {
      b.append("The committee adopted report number ").append(i).append(" without a vote. ");
    }
    Files.writeString(text, b.toString());
    Path pruned = tmp.resolve("pruned");
    CliRun p =
        CliRun.of(
            "prune",
            "--model",
            tiny(),
            "--method",
            "wanda",
            "--sparsity",
            "0.5",
            "--samples",
            "4",
            "--seq-len",
            "64",
            "--out",
            pruned.toString());
    assertEquals(0, p.code(), p.err());
    Path out = tmp.resolve("lora");
    CliRun r =
        CliRun.of(
            "lora",
            "--model",
            pruned.toString(),
            "--teacher",
            tiny(),
            "--steps",
            "8",
            "--lr",
            "3e-3",
            "--samples",
            "16",
            "--held-out",
            "4",
            "--seq-len",
            "64",
            "--merge",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode json = new ObjectMapper().readTree(r.out());
    JsonNode result = json.get("result");
    assertTrue(
        result.get("kl_after").asDouble() < result.get("kl_before").asDouble(), result.toString());
    assertTrue(result.get("masked_delta").asBoolean());
    assertEquals(28, result.get("adapted_linears").asInt());
    assertEquals("lora", json.get("stage").asText());
    for (String f :
        List.of(
            "compactor.json",
            "adapter/adapter_config.json",
            "adapter/adapter_model.safetensors",
            "adapter/compactor.json",
            "merged/model.safetensors",
            "merged/config.json",
            "merged/tokenizer.json")) {
      assertTrue(Files.isRegularFile(out.resolve(f)), f);
    }

    CliRun adapted =
        CliRun.of(
            "eval",
            "--model",
            pruned.toString(),
            "--adapter",
            out.resolve("adapter").toString(),
            "--text",
            text.toString(),
            "--seq-len",
            "64",
            "--json");
    CliRun merged =
        CliRun.of(
            "eval",
            "--model",
            out.resolve("merged").toString(),
            "--text",
            text.toString(),
            "--seq-len",
            "64",
            "--json");
    CliRun plain =
        CliRun.of(
            "eval",
            "--model",
            pruned.toString(),
            "--text",
            text.toString(),
            "--seq-len",
            "64",
            "--json");
    assertEquals(0, adapted.code(), adapted.err());
    double pa = new ObjectMapper().readTree(adapted.out()).get("perplexity").asDouble();
    double pm = new ObjectMapper().readTree(merged.out()).get("perplexity").asDouble();
    double pp = new ObjectMapper().readTree(plain.out()).get("perplexity").asDouble();
    assertEquals(pm, pa, 1e-4 * pm, "eval --adapter scores what the merged model scores");
    assertTrue(Math.abs(pp - pa) > 1e-3, "the adapter changes the pruned model: " + pp);

    CliRun g =
        CliRun.of(
            "generate",
            "--model",
            pruned.toString(),
            "--adapter",
            out.resolve("adapter").toString(),
            "--prompt",
            "The committee",
            "--max-tokens",
            "8",
            "--temperature",
            "0");
    assertEquals(0, g.code(), g.err());
    assertTrue(g.out().startsWith("The committee"), g.out());

    CliRun wrong =
        CliRun.of(
            "eval", "--model", tiny(), "--adapter", pruned.toString(), "--text", text.toString());
    assertEquals(1, wrong.code());
    assertTrue(wrong.err().contains("adapter_config.json"), wrong.err());
  }
}
