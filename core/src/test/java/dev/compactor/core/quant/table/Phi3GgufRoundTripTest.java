package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The golden Phi-3 checkpoint (fused qkv_proj and gate_up_proj) exported as llama.cpp's phi3 GGUF:
 * fused {@code attn_qkv} and {@code ffn_up} (gate | up, split by llama.cpp at run time), the keys
 * convert_hf_to_gguf.py's Phi3MiniModel writes, and the file converted back computes the golden
 * logits.
 */
class Phi3GgufRoundTripTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static final String QWEN2_REGEX =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
          + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  @TempDir Path dir;

  /** A copy of the golden model (without golden.safetensors) with a Qwen-style tokenizer.json. */
  private Path model(Golden g) throws IOException {
    Path m = dir.resolve(g.name);
    Files.createDirectories(m);
    try (Stream<Path> files = Files.list(g.dir)) {
      for (Path f : files.toList()) {
        if (!f.getFileName().toString().equals("golden.safetensors")) {
          Files.copy(f, m.resolve(f.getFileName()));
        }
      }
    }
    ObjectNode t = JSON.createObjectNode();
    ObjectNode bpe = t.putObject("model");
    bpe.put("type", "BPE");
    ObjectNode vocab = bpe.putObject("vocab");
    for (int i = 0; i < 95; i++) {
      vocab.put(i < 26 ? String.valueOf((char) ('a' + i)) : "t" + i, i);
    }
    bpe.putArray("merges").add("a b");
    t.putArray("added_tokens")
        .addObject()
        .put("id", 95)
        .put("content", "<|endoftext|>")
        .put("special", true);
    ArrayNode pre = t.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
    pre.addObject()
        .put("type", "Split")
        .put("behavior", "Isolated")
        .putObject("pattern")
        .put("Regex", QWEN2_REGEX);
    pre.addObject().put("type", "ByteLevel").put("use_regex", false);
    t.putObject("post_processor").put("type", "ByteLevel");
    t.putObject("decoder").put("type", "ByteLevel");
    Files.writeString(m.resolve("tokenizer.json"), JSON.writeValueAsString(t));
    return m;
  }

  @Test
  void goldenPhi3ExportsFusedAndComesBackToTheGoldenLogits() throws Exception {
    try (Golden g = new Golden("phi3_fused")) {
      Path model = model(g);
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
        Map<String, List<Long>> tensors = new TreeMap<>();
        for (GgufTensorInfo i : r.tensors()) {
          List<Long> shape = new ArrayList<>();
          for (long d : i.shape()) {
            shape.add(d);
          }
          tensors.put(i.name(), shape);
        }
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

  @Test
  void longropeIsRefused() throws Exception {
    try (Golden g = new Golden("phi3_fused")) {
      Path model = model(g);
      ObjectNode c = (ObjectNode) JSON.readTree(model.resolve("config.json").toFile());
      c.putObject("rope_scaling").put("type", "longrope");
      Files.writeString(model.resolve("config.json"), JSON.writeValueAsString(c));
      UnsupportedOperationException e =
          assertThrows(
              UnsupportedOperationException.class,
              () -> GgufExport.export(model, LlamaFileType.F32, Map.of(), dir.resolve("x.gguf")));
      assertTrue(e.getMessage().contains("not supported"), e.getMessage());
    }
  }
}
