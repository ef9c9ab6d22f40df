package dev.compactor.cli.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.cli.Main;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MoeTableCommandTest {

  @Test
  void printsOneRowPerMethodAndKeptCount(@TempDir Path tmp) throws Exception {
    Path model = mixtral(tmp.resolve("m"), "mixtral");
    String[] r =
        run("moe-table", "--model", model.toString(), "--kept", "2", "--max-bytes", "2000");
    assertEquals("0", r[0], r[2]);
    String out = r[1];
    assertTrue(out.contains("original 4/4"), out);
    assertTrue(out.contains("prune frequency 2/4"), out);
    assertTrue(out.contains("prune weighted_norm 2/4"), out);
    assertTrue(out.contains("merge weight-cosine 2/4"), out);
  }

  @Test
  void refusesBadCountsAndDenseModels(@TempDir Path tmp) throws Exception {
    Path model = mixtral(tmp.resolve("m"), "mixtral");
    String[] r = run("moe-table", "--model", model.toString(), "--kept", "5");
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("--kept: expected counts between 1 and 4, found 5"), r[2]);
    Path llama = tmp.resolve("l");
    try (Transformer t =
        Transformer.randomInit(ModelConfig.llama(257, 32, 24, 1, 4, 2, 64), 1, Device.cpu())) {
      t.save(llama, DType.F32, Map.of());
    }
    r = run("moe-table", "--model", llama.toString());
    assertEquals("2", r[0]);
    assertTrue(r[2].contains("expected a mixture-of-experts model, found llama"), r[2]);
  }

  private static Path mixtral(Path dir, String type) throws Exception {
    ModelConfig c =
        ModelConfig.llama(257, 32, 24, 1, 4, 2, 64)
            .with(
                "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\""
                    + type
                    + "\",\"num_local_experts\":4,\"num_experts_per_tok\":2,"
                    + "\"sliding_window\":null}");
    try (Transformer t = Transformer.randomInit(c, 2, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(dir, 64);
    return dir;
  }

  private static String[] run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new String[] {
      Integer.toString(code),
      out.toString(StandardCharsets.UTF_8),
      err.toString(StandardCharsets.UTF_8)
    };
  }
}
