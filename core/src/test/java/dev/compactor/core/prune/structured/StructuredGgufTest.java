package dev.compactor.core.prune.structured;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTestModels;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.quant.table.GgufToHf;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A structurally pruned Llama (heads * head_dim no longer hidden_size) exports to GGUF with
 * llama.cpp's {@code attention.key_length}, passes the independent Python layout check, and the
 * GGUF's weights computes the pruned model's logits.
 */
class StructuredGgufTest {

  @TempDir Path tmp;

  @Test
  void prunedLlamaExportsWithKeyLengthAndComputesTheSameLogits() throws Exception {
    roundTrip(false);
  }

  /**
   * With compensation the o_proj / down_proj biases go to llama.cpp's optional attn_output.bias and
   * ffn_down.bias (gate/up zeros too); the zero q/k/v biases are left out and come back as zeros.
   */
  @Test
  void compensatedLlamaExportsItsBiases() throws Exception {
    Path gguf = roundTrip(true);
    try (GgufReader r = GgufReader.open(gguf)) {
      assertTrue(r.tensor("blk.1.attn_output.bias") != null);
      assertEquals(64L, r.tensor("blk.1.ffn_down.bias").shape()[0]);
      assertTrue(r.tensors().stream().noneMatch(t -> t.name().endsWith("attn_q.bias")));
    }
  }

  private Path roundTrip(boolean compensate) throws Exception {
    ModelConfig c = ModelConfig.llama(257, 64, 128, 2, 4, 2, 128);
    Path in = StructuredTestModels.random(c, 8).write(tmp.resolve("in"));
    ByteLevelTokenizerFiles.write(in, 128);
    Path pruned = tmp.resolve("pruned");
    List<int[]> windows = StructuredTestModels.windows(4, 32, 257, 9);
    new StructuredPruner(
            new StructuredSpec(0.5, 0.25, Importance.ACTIVATION, HeadMode.KV_GROUPS, compensate))
        .prune(in, pruned, windows, Map.of(), StructuredPruner.Progress.NONE);
    Path gguf = tmp.resolve("pruned.gguf");
    GgufExport.export(pruned, LlamaFileType.F32, Map.of(), gguf);
    try (GgufReader r = GgufReader.open(gguf)) {
      assertEquals(2L, r.metadata().get("llama.attention.head_count").asLong());
      assertEquals(1L, r.metadata().get("llama.attention.head_count_kv").asLong());
      assertEquals(16L, r.metadata().get("llama.attention.key_length").asLong());
      assertEquals(16L, r.metadata().get("llama.attention.value_length").asLong());
      assertEquals(96L, r.metadata().get("llama.feed_forward_length").asLong());
    }
    String py = GgufTestModels.assertReadGgufPyOk(gguf);
    assertTrue(py.contains("llama.cpp llama layout: ok"), py);
    Path back = tmp.resolve("back");
    GgufToHf.convert(gguf, pruned, back);
    List<int[]> eval = StructuredTestModels.windows(2, 24, 257, 10);
    double diff =
        StructuredTestModels.maxAbsDiff(
            StructuredTestModels.logits(pruned, eval), StructuredTestModels.logits(back, eval));
    assertTrue(diff <= 1e-4, "GGUF logits differ by " + diff);
    return gguf;
  }
}
