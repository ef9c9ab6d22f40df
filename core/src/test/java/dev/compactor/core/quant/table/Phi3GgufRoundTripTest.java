package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTestModels;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.Transformer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The golden Phi-3 checkpoint (fused qkv_proj and gate_up_proj) exported as llama.cpp's phi3 GGUF:
 * fused {@code attn_qkv} and {@code ffn_up} (gate | up, split by llama.cpp at run time), the keys
 * convert_hf_to_gguf.py's Phi3MiniModel writes, and the file converted back computes the golden
 * logits.
 */
class Phi3GgufRoundTripTest {

  @TempDir Path dir;

  @Test
  void goldenPhi3ExportsFusedAndComesBackToTheGoldenLogits() throws Exception {
    try (Golden g = new Golden("phi3_fused")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path gguf = dir.resolve("phi3.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      try (GgufReader r = GgufReader.open(gguf)) {
        assertEquals("phi3", r.require("general.architecture").value());
        assertEquals(12L, ((Number) r.require("phi3.rope.dimension_count").value()).longValue());
        assertEquals(64L, ((Number) r.require("phi3.context_length").value()).longValue());
        assertEquals(
            64L,
            ((Number) r.require("phi3.rope.scaling.original_context_length").value()).longValue());
        assertEquals(5L, ((Number) r.require("phi3.attention.sliding_window").value()).longValue());
        Map<String, List<Long>> tensors = GgufTestModels.tensorShapes(r);
        // 4 heads of 12 for q, 2 kv heads each for k and v; gate | up of 80 each
        assertEquals(List.of(96L, 48L), tensors.get("blk.0.attn_qkv.weight"));
        assertEquals(List.of(160L, 48L), tensors.get("blk.1.ffn_up.weight"));
        assertEquals(List.of(48L, 80L), tensors.get("blk.1.ffn_down.weight"));
        assertTrue(!tensors.containsKey("blk.0.attn_q.weight"), tensors.keySet().toString());
        assertTrue(!tensors.containsKey("blk.0.ffn_gate.weight"), tensors.keySet().toString());
      }
      Path back = dir.resolve("phi3-back");
      GgufToHf.convert(gguf, model, back);
      try (TensorSource a = Checkpoints.open(model);
          TensorSource b = Checkpoints.open(back)) {
        assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
        for (String n : a.names()) {
          assertArrayEquals(a.readFloats(n), b.readFloats(n), n);
        }
      }
      try (Transformer t = Transformer.load(back, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        g.assertClose("logits", t.logits(m, g.inputIds(m)), "GGUF round trip of phi3_fused");
      }
    }
  }

  /**
   * Phi-4-mini style partial rotary: llama.cpp's phi3 graph rotates the first {@code
   * rope.dimension_count} dims of each head (NEOX pairs), so the exporter writes head_dim * 0.75,
   * and the file comes back to the golden logits.
   */
  @Test
  void partialRotaryExportsItsRotaryDims() throws Exception {
    try (Golden g = new Golden("phi3_partial_rotary")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path gguf = dir.resolve("phi3-partial.gguf");
      GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
      try (GgufReader r = GgufReader.open(gguf)) {
        // hidden 64 over 4 heads: head_dim 16, of which 12 rotate
        assertEquals(4L, ((Number) r.require("phi3.attention.head_count").value()).longValue());
        assertEquals(12L, ((Number) r.require("phi3.rope.dimension_count").value()).longValue());
      }
      Path back = dir.resolve("phi3-partial-back");
      GgufToHf.convert(gguf, model, back);
      try (Transformer t = Transformer.load(back, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        g.assertClose("logits", t.logits(m, g.inputIds(m)), "GGUF round trip of phi3 partial");
      }
    }
  }

  @Test
  void longropeIsRefused() throws Exception {
    try (Golden g = new Golden("phi3_fused")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      ObjectNode c =
          (ObjectNode) GgufTestModels.JSON.readTree(model.resolve("config.json").toFile());
      c.putObject("rope_scaling").put("type", "longrope");
      Files.writeString(model.resolve("config.json"), GgufTestModels.JSON.writeValueAsString(c));
      UnsupportedOperationException e =
          assertThrows(
              UnsupportedOperationException.class,
              () -> GgufExport.export(model, LlamaFileType.F32, Map.of(), dir.resolve("x.gguf")));
      assertTrue(e.getMessage().contains("not supported"), e.getMessage());
    }
  }
}
