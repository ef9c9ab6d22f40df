package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.GgufTestModels;
import dev.compactor.core.gguf.GgufValue;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plain-PyTorch golden Qwen checkpoints exported as llama.cpp's qwen2/qwen3 GGUF: every key and
 * every tensor (name, shape, type) against tables written from convert_hf_to_gguf.py (Qwen2Model,
 * Qwen3Model: TextModel's generic keys) and llama.cpp's loader (src/llama-model.cpp,
 * src/models/qwen3.cpp); the independent numpy reader read_gguf.py checks the same file against its
 * own table; and the file converted back to Hugging Face computes the golden logits.
 */
class QwenGgufRoundTripTest {

  @TempDir Path dir;

  /** Every key convert_hf_to_gguf.py writes for the golden case, with its value. */
  private static Map<String, Object> expectedKeys(String name) {
    Map<String, Object> k = new TreeMap<>();
    k.put("general.alignment", 32L);
    k.put("general.file_type", 0L);
    k.put("general.quantization_version", 2L);
    k.put("tokenizer.ggml.model", "gpt2");
    k.put("tokenizer.ggml.pre", "qwen2");
    k.put("tokenizer.ggml.tokens", 96);
    k.put("tokenizer.ggml.token_type", 96);
    k.put("tokenizer.ggml.merges", 1);
    // HF's Qwen tokenizers add no BOS (the post-processor is plain ByteLevel)
    k.put("tokenizer.ggml.add_bos_token", false);
    k.put("tokenizer.ggml.add_eos_token", false);
    String a;
    switch (name) {
      case "qwen2_sharded" -> {
        a = "qwen2.";
        k.put(a + "feed_forward_length", 80L);
        k.put(a + "attention.head_count", 4L);
        k.put(a + "attention.head_count_kv", 1L);
        k.put(a + "rope.freq_base", 1e6);
        k.put(a + "attention.layer_norm_rms_epsilon", 1e-5);
        k.put("tokenizer.ggml.bos_token_id", 1L);
      }
      case "qwen2_rope_yarn" -> {
        a = "qwen2.";
        k.put(a + "feed_forward_length", 48L);
        k.put(a + "attention.head_count", 3L);
        k.put(a + "attention.head_count_kv", 1L);
        k.put(a + "rope.freq_base", 100.0);
        k.put(a + "attention.layer_norm_rms_epsilon", 1e-5);
        k.put(a + "attention.key_length", 16L);
        k.put(a + "attention.value_length", 16L);
        k.put(a + "rope.scaling.type", "yarn");
        k.put(a + "rope.scaling.factor", 4.0);
        k.put(a + "rope.scaling.original_context_length", 16L);
        k.put(a + "rope.scaling.yarn_beta_fast", 32.0);
        k.put(a + "rope.scaling.yarn_beta_slow", 1.0);
      }
      case "qwen3_qk_norm" -> {
        a = "qwen3.";
        k.put(a + "feed_forward_length", 80L);
        k.put(a + "attention.head_count", 4L);
        k.put(a + "attention.head_count_kv", 2L);
        k.put(a + "rope.freq_base", 1e6);
        k.put(a + "attention.layer_norm_rms_epsilon", 1e-6);
        k.put(a + "attention.key_length", 16L);
        k.put(a + "attention.value_length", 16L);
      }
      default -> throw new IllegalArgumentException(name);
    }
    k.put("general.architecture", a.substring(0, a.length() - 1));
    k.put("general.name", name);
    k.put(a + "context_length", 64L);
    k.put(a + "embedding_length", 48L);
    k.put(a + "block_count", 2L);
    return k;
  }

  /**
   * llama.cpp's tensors for the case, row-major [rows, cols] (ggml's ne reversed): qwen2 requires
   * q/k/v biases, qwen3 q/k norms of one head dim; a tied head has no output.weight.
   */
  private static Map<String, List<Long>> expectedTensors(String name) {
    boolean qwen3 = name.startsWith("qwen3");
    long h = 48;
    long heads = name.equals("qwen2_rope_yarn") ? 3 : 4;
    long kv = qwen3 ? 2 : 1;
    long hd = name.equals("qwen2_sharded") ? 12 : 16; // no head_dim there: 48 / 4
    long ff = name.equals("qwen2_rope_yarn") ? 48 : 80;
    long vocab = 96;
    Map<String, List<Long>> t = new TreeMap<>();
    t.put("token_embd.weight", List.of(vocab, h));
    t.put("output_norm.weight", List.of(h));
    if (!qwen3) {
      t.put("output.weight", List.of(vocab, h));
    }
    for (int l = 0; l < 2; l++) {
      String b = "blk." + l + ".";
      t.put(b + "attn_norm.weight", List.of(h));
      t.put(b + "attn_q.weight", List.of(heads * hd, h));
      t.put(b + "attn_k.weight", List.of(kv * hd, h));
      t.put(b + "attn_v.weight", List.of(kv * hd, h));
      t.put(b + "attn_output.weight", List.of(h, heads * hd));
      if (qwen3) {
        t.put(b + "attn_q_norm.weight", List.of(hd));
        t.put(b + "attn_k_norm.weight", List.of(hd));
      } else {
        t.put(b + "attn_q.bias", List.of(heads * hd));
        t.put(b + "attn_k.bias", List.of(kv * hd));
        t.put(b + "attn_v.bias", List.of(kv * hd));
      }
      t.put(b + "ffn_norm.weight", List.of(h));
      t.put(b + "ffn_gate.weight", List.of(ff, h));
      t.put(b + "ffn_up.weight", List.of(ff, h));
      t.put(b + "ffn_down.weight", List.of(h, ff));
    }
    return t;
  }

  private static Object comparable(GgufValue v, Object want) {
    if (want instanceof Integer) {
      return v.asList().size();
    }
    if (want instanceof Double) {
      return (double) (float) v.asDouble();
    }
    return v.value() instanceof Number n ? (Object) n.longValue() : v.value();
  }

  @Test
  void goldenQwenCheckpointsExportAsLlamaCppsArchAndComeBackToTheGoldenLogits() throws Exception {
    for (String name : List.of("qwen2_sharded", "qwen2_rope_yarn", "qwen3_qk_norm")) {
      try (Golden g = new Golden(name)) {
        Path model = GgufTestModels.goldenModel(g, dir);
        Path gguf = dir.resolve(name + ".gguf");
        GgufExport.export(model, LlamaFileType.F32, Map.of(), gguf);
        try (GgufReader r = GgufReader.open(gguf)) {
          Map<String, Object> want = expectedKeys(name);
          assertEquals(want.keySet(), new TreeSet<>(r.metadata().keySet()), name + " keys");
          for (Map.Entry<String, Object> e : want.entrySet()) {
            Object w = e.getValue() instanceof Double d ? (double) d.floatValue() : e.getValue();
            assertEquals(w, comparable(r.metadata().get(e.getKey()), w), name + " " + e.getKey());
          }
          Map<String, List<Long>> tensors = GgufTestModels.tensorShapes(r);
          for (GgufTensorInfo i : r.tensors()) {
            assertEquals(GgmlType.F32, i.type(), name + " " + i.name());
          }
          assertEquals(expectedTensors(name), tensors, name + " tensors");
        }
        GgufTestModels.assertReadGgufPyOk(gguf);
        Path back = dir.resolve(name + "-back");
        GgufToHf.convert(gguf, model, back);
        try (TensorSource a = Checkpoints.open(model);
            TensorSource b = Checkpoints.open(back)) {
          assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()), name);
          for (String n : a.names()) {
            assertArrayEquals(a.readFloats(n), b.readFloats(n), name + " " + n);
          }
        }
        try (Transformer t = Transformer.load(back, Device.cpu());
            NDManager m = NDManager.newBaseManager()) {
          g.assertClose("logits", t.logits(m, g.inputIds(m)), "GGUF round trip of " + name);
        }
      }
    }
  }

  @Test
  void aQ8FileOfAQwenComesBackWithinItsQuantError() throws Exception {
    // 48-wide rows fit no 32-value block, so llama-quantize's fallback makes those matrices F16;
    // o_proj's 64-wide rows (4 heads of 16) are Q8_0
    try (Golden g = new Golden("qwen3_qk_norm")) {
      Path model = GgufTestModels.goldenModel(g, dir);
      Path gguf = dir.resolve("q8.gguf");
      GgufExport.export(model, LlamaFileType.Q8_0, Map.of(), gguf);
      Path back = dir.resolve("q8-back");
      GgufToHf.Result res = GgufToHf.convert(gguf, model, back);
      assertEquals(GgmlType.F16, res.tensorTypes().get("blk.0.attn_q.weight"));
      assertEquals(GgmlType.Q8_0, res.tensorTypes().get("blk.0.attn_output.weight"));
      assertEquals(GgmlType.F32, res.tensorTypes().get("blk.0.attn_q_norm.weight"));
      GgufTestModels.assertReadGgufPyOk(gguf);
      double rel =
          GgufTestModels.relativeError(
              GgufTestModels.logits(model, g), GgufTestModels.logits(back, g));
      // Q8_0 o_proj (~0.5% relative per weight) and F16 elsewhere give ~1% on this tiny random
      // model's logits (measured 0.0103); a wrong row order or a lost bias/norm would be O(1)
      assertTrue(rel > 0 && rel < 0.03, "relative logit error " + rel);
    }
  }

  @Test
  void aGgufOfAnotherArchIsRefusedWhenConvertingBack() throws Exception {
    try (Golden q3 = new Golden("qwen3_qk_norm");
        Golden q2 = new Golden("qwen2_sharded")) {
      Path gguf = dir.resolve("q3.gguf");
      GgufExport.export(GgufTestModels.goldenModel(q3, dir), LlamaFileType.F32, Map.of(), gguf);
      Path other = GgufTestModels.goldenModel(q2, dir);
      CheckpointFormatException e =
          assertThrows(
              CheckpointFormatException.class,
              () -> GgufToHf.convert(gguf, other, dir.resolve("x")));
      assertEquals(
          "GGUF general.architecture: expected qwen2 (the original is qwen2), found qwen3",
          e.getMessage());
    }
  }
}
