package dev.compactor.cli.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code compactor moefy} on the shipped tiny model, and its refusals. */
class MoefyCommandTest {

  @TempDir Path tmp;

  @Test
  void writesOneModelPerKAndTablesThemAgainstTheDenseModel() throws Exception {
    Path out = tmp.resolve("moe");
    CliRun r =
        CliRun.of(
            "moefy",
            "--model",
            TinyReferenceModel.shipped().toString(),
            "--experts",
            "8",
            "--k",
            "2,8",
            "--samples",
            "4",
            "--out",
            out.toString(),
            "--table",
            "--max-bytes",
            "3000",
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode j = new ObjectMapper().readTree(r.out());
    assertEquals(8, j.get("experts").asInt());
    assertEquals(4 * 256, j.get("trainTokens").asInt());
    JsonNode k2 = j.get("rows").get(0);
    JsonNode k8 = j.get("rows").get(1);
    assertEquals(2, k2.get("k").asInt());
    assertTrue(k8.get("klDivergence").asDouble() < 1e-6, "k = E is the dense model: " + k8);
    assertEquals(1.0, k8.get("top1Agreement").asDouble());
    assertTrue(k2.get("klDivergence").asDouble() > 1e-3, "k = 2 of 8 must differ: " + k2);
    double recall = k2.get("routerRecall").asDouble();
    assertTrue(recall > 0.25 && recall <= 1, "recall above chance (2/8): " + recall);
    // tiny model: hidden 128, intermediate 512, 4 layers; router 8 x 128
    long dense = j.get("denseMlpFlopsPerToken").asLong();
    assertEquals(4L * 2 * 3 * 128 * 512, dense);
    assertEquals(
        4L * (2 * 128 * 8 + 2 * 3 * 128 * 512 / 8 * 2), k2.get("mlpFlopsPerToken").asLong());
    for (String k : new String[] {"k2", "k8"}) {
      Path dir = out.resolve(k);
      assertTrue(Files.isRegularFile(dir.resolve("tokenizer.json")), "tokenizer copied");
      ModelConfig c = ModelConfig.read(dir);
      assertEquals(8, c.moeficationExperts());
      assertEquals(Integer.parseInt(k.substring(1)), c.moeficationTopK());
    }
  }

  @Test
  void mistakesAreUsageErrorsAndUnsupportedModelsAreRefused() throws Exception {
    String tiny = TinyReferenceModel.shipped().toString();
    String o = tmp.resolve("x").toString();
    for (String[] bad :
        new String[][] {
          {"--experts", "7", "--k", "1"},
          {"--experts", "8", "--k", "9"},
          {"--experts", "8", "--k", "2,2"},
          {"--experts", "8", "--k", "two"},
          {"--experts", "8", "--k", "1", "--clustering", "spectral"},
        }) {
      String[] args = new String[bad.length + 5];
      args[0] = "moefy";
      args[1] = "--model";
      args[2] = tiny;
      System.arraycopy(bad, 0, args, 3, bad.length);
      args[bad.length + 3] = "--out";
      args[bad.length + 4] = o;
      CliRun r = CliRun.of(args);
      assertEquals(2, r.code(), String.join(" ", bad) + ": " + r.err());
    }
    Path gpt2 = tmp.resolve("gpt2");
    try (Transformer t =
        Transformer.randomInit(
            ModelConfig.fromJson(
                "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":1,"
                    + "\"n_head\":4,\"n_positions\":40}"),
            1,
            Device.cpu())) {
      t.save(gpt2, DType.F32, Map.of());
    }
    CliRun r =
        CliRun.of("moefy", "--model", gpt2.toString(), "--experts", "4", "--k", "1", "--out", o);
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("not supported yet"), r.err());
  }
}
