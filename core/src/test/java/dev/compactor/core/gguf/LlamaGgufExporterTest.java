package dev.compactor.core.gguf;

import static dev.compactor.core.gguf.GgufTestModels.FFN;
import static dev.compactor.core.gguf.GgufTestModels.HEADS;
import static dev.compactor.core.gguf.GgufTestModels.HEAD_DIM;
import static dev.compactor.core.gguf.GgufTestModels.HIDDEN;
import static dev.compactor.core.gguf.GgufTestModels.JSON;
import static dev.compactor.core.gguf.GgufTestModels.KV_HEADS;
import static dev.compactor.core.gguf.GgufTestModels.LAYERS;
import static dev.compactor.core.gguf.GgufTestModels.VOCAB;
import static dev.compactor.core.gguf.GgufTestModels.checkpoint;
import static dev.compactor.core.gguf.GgufTestModels.config;
import static dev.compactor.core.gguf.GgufTestModels.rnd;
import static dev.compactor.core.gguf.GgufTestModels.tokenizer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.model.RopeScaling;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A small random Llama ({@link GgufTestModels}) through the exporter and back through GgufReader.
 */
class LlamaGgufExporterTest {

  @TempDir Path dir;

  @Test
  void exportsALoadableLlamaAndReadsItBack() throws IOException {
    InMemoryTensorSource src = checkpoint(true, 1);
    Path out = dir.resolve("tiny.gguf");
    LlamaGgufExporter.Result res =
        LlamaGgufExporter.export(
            config(false),
            src,
            tokenizer(),
            LlamaGgufExporter.Options.of("tiny-llama", LlamaFileType.Q4_K_M),
            out);
    assertEquals(Files.size(out), res.bytes());
    assertEquals(0, src.reads, "no tensor is read whole");
    for (String name : src.names()) {
      assertEquals(
          src.info(name).byteLength(),
          src.rawBytesRead.get(name),
          name + ": each byte read exactly once (streaming)");
    }
    String copyTo = System.getProperty("gguf.llama.write"); // for read_gguf.py by hand
    if (copyTo != null) {
      Files.copy(out, Path.of(copyTo), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    try (GgufReader r = GgufReader.open(out)) {
      Map<String, GgufValue> md = r.metadata();
      assertEquals("llama", md.get("general.architecture").asString());
      assertEquals("tiny-llama", md.get("general.name").asString());
      assertEquals(15L, md.get("general.file_type").asLong());
      assertEquals(2048L, md.get("llama.context_length").asLong());
      assertEquals((long) HIDDEN, md.get("llama.embedding_length").asLong());
      assertEquals((long) LAYERS, md.get("llama.block_count").asLong());
      assertEquals((long) FFN, md.get("llama.feed_forward_length").asLong());
      assertEquals((long) HEADS, md.get("llama.attention.head_count").asLong());
      assertEquals((long) KV_HEADS, md.get("llama.attention.head_count_kv").asLong());
      assertEquals(500000.0, md.get("llama.rope.freq_base").asDouble());
      assertEquals(1e-5f, (float) md.get("llama.attention.layer_norm_rms_epsilon").asDouble());
      assertEquals((long) HEAD_DIM, md.get("llama.rope.dimension_count").asLong());
      assertEquals((long) VOCAB, md.get("llama.vocab_size").asLong());
      assertEquals(GgufValueType.FLOAT32, md.get("llama.rope.freq_base").type());
      assertEquals(GgufValueType.UINT32, md.get("llama.block_count").type());

      assertEquals("gpt2", md.get("tokenizer.ggml.model").asString());
      assertEquals("llama-bpe", md.get("tokenizer.ggml.pre").asString());
      List<Object> tokens = md.get("tokenizer.ggml.tokens").asList();
      List<Object> types = md.get("tokenizer.ggml.token_type").asList();
      assertEquals(VOCAB, tokens.size());
      assertEquals(VOCAB, types.size());
      assertEquals("a", tokens.get(0));
      assertEquals("[PAD70]", tokens.get(70));
      assertEquals(5, types.get(70)); // UNUSED
      assertEquals("<|begin_of_text|>", tokens.get(78));
      assertEquals(3, types.get(78)); // CONTROL
      assertEquals(4, types.get(77)); // USER_DEFINED
      assertEquals(1, types.get(5)); // NORMAL
      assertEquals(List.of("a b", "c d"), md.get("tokenizer.ggml.merges").asList());
      assertEquals(78L, md.get("tokenizer.ggml.bos_token_id").asLong());
      assertEquals(79L, md.get("tokenizer.ggml.eos_token_id").asLong());

      // Q4_K_M as llama-quantize writes it (2 layers: use_more_bits is layer 1 only)
      assertEquals(GgmlType.Q4_K, r.tensor("token_embd.weight").type());
      assertEquals(GgmlType.Q6_K, r.tensor("output.weight").type());
      assertEquals(GgmlType.F32, r.tensor("output_norm.weight").type());
      assertEquals(GgmlType.Q4_K, r.tensor("blk.1.attn_q.weight").type());
      assertEquals(GgmlType.Q4_K, r.tensor("blk.0.attn_v.weight").type());
      assertEquals(GgmlType.Q6_K, r.tensor("blk.1.attn_v.weight").type());
      assertEquals(GgmlType.Q5_0, r.tensor("blk.0.ffn_down.weight").type()); // 288: Q4_K -> Q5_0
      assertEquals(GgmlType.Q8_0, r.tensor("blk.1.ffn_down.weight").type()); // Q6_K -> Q8_0
      assertEquals(2 + LAYERS * 9 + 1, r.tensors().size());
      assertArrayEquals(new long[] {HIDDEN, VOCAB}, r.tensor("token_embd.weight").ggmlDims());

      for (GgufTensorInfo t : r.tensors()) {
        String hf = hfName(t.name());
        float[] expect = src.get(hf);
        int cols = (int) t.rowLength();
        if (t.name().contains("attn_q")) {
          expect = LlamaGgufExporter.permuteForRope(expect, HIDDEN, cols, HEADS);
        } else if (t.name().contains("attn_k")) {
          expect = LlamaGgufExporter.permuteForRope(expect, KV_HEADS * HEAD_DIM, cols, KV_HEADS);
        }
        double err = relRmse(expect, r.readTensorFloats(t.name()));
        double ceiling =
            switch (t.type()) {
              case F32 -> 0.0;
              case F16 -> 3e-4;
              case Q8_0 -> 0.0065;
              case Q6_K -> 0.022;
              case Q4_K -> 0.086;
              case Q4_0 -> 0.103;
              case Q5_0 -> 0.055;
              default -> throw new AssertionError("unexpected type " + t);
            };
        assertTrue(err <= ceiling, t + ": relative RMSE " + err + " > " + ceiling);
      }
    }
  }

  static String hfName(String gguf) {
    Map<String, String> fixed =
        Map.of(
            "token_embd.weight", "model.embed_tokens.weight",
            "output_norm.weight", "model.norm.weight",
            "output.weight", "lm_head.weight");
    if (fixed.containsKey(gguf)) {
      return fixed.get(gguf);
    }
    String[] p = gguf.split("\\.");
    String layer = "model.layers." + p[1] + ".";
    return layer
        + switch (p[2]) {
          case "attn_norm" -> "input_layernorm.weight";
          case "attn_q" -> "self_attn.q_proj.weight";
          case "attn_k" -> "self_attn.k_proj.weight";
          case "attn_v" -> "self_attn.v_proj.weight";
          case "attn_output" -> "self_attn.o_proj.weight";
          case "ffn_norm" -> "post_attention_layernorm.weight";
          case "ffn_gate" -> "mlp.gate_proj.weight";
          case "ffn_up" -> "mlp.up_proj.weight";
          case "ffn_down" -> "mlp.down_proj.weight";
          default -> throw new IllegalArgumentException(gguf);
        };
  }

  static double relRmse(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double e = 0;
    double n = 0;
    for (int i = 0; i < a.length; i++) {
      e += (a[i] - b[i]) * (double) (a[i] - b[i]);
      n += a[i] * (double) a[i];
    }
    return Math.sqrt(e / n);
  }

  @Test
  void q4KSFileDeclaresItselfAndHoldsTheQ4KSMix() throws IOException {
    Path out = dir.resolve("q4ks.gguf");
    LlamaGgufExporter.Result res =
        LlamaGgufExporter.export(
            config(false),
            checkpoint(true, 5),
            tokenizer(),
            LlamaGgufExporter.Options.of("m", LlamaFileType.Q4_K_S),
            out);
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(LAYERS, HEADS, KV_HEADS, false, false);
    try (GgufReader r = GgufReader.open(out)) {
      assertEquals(14L, r.require("general.file_type").asLong());
      assertEquals(GgmlType.Q5_K, r.tensor("blk.0.attn_v.weight").type());
      assertEquals(GgmlType.Q5_K, r.tensor("blk.1.attn_v.weight").type());
      for (GgufTensorInfo t : res.tensors()) {
        long[] shape =
            t.ggmlDims().length == 1 ? t.ggmlDims() : new long[] {t.ggmlDims()[1], t.ggmlDims()[0]};
        assertEquals(
            LlamaQuantMix.typeFor(LlamaFileType.Q4_K_S, m, t.name(), shape),
            r.tensor(t.name()).type(),
            t.name());
        double err = relRmse(hfFloats(t.name()), r.readTensorFloats(t.name()));
        if (t.type() == GgmlType.Q5_K) {
          assertTrue(err < 0.045, t + ": relative RMSE " + err);
        }
      }
    }
  }

  private float[] hfFloats(String ggufName) {
    InMemoryTensorSource src = checkpoint(true, 5);
    float[] x = src.get(hfName(ggufName));
    if (ggufName.contains("attn_q")) {
      return LlamaGgufExporter.permuteForRope(x, HIDDEN, HIDDEN, HEADS);
    } else if (ggufName.contains("attn_k")) {
      return LlamaGgufExporter.permuteForRope(x, KV_HEADS * HEAD_DIM, HIDDEN, KV_HEADS);
    }
    return x;
  }

  @Test
  void tiedEmbeddingsOmitTheOutputTensor() throws IOException {
    Path out = dir.resolve("tied.gguf");
    LlamaGgufExporter.export(
        config(true),
        checkpoint(false, 2),
        tokenizer(),
        LlamaGgufExporter.Options.of("tied", LlamaFileType.Q8_0),
        out);
    try (GgufReader r = GgufReader.open(out)) {
      assertFalse(r.tensors().stream().anyMatch(t -> t.name().equals("output.weight")));
      assertEquals(7L, r.require("general.file_type").asLong());
      assertEquals(GgmlType.Q8_0, r.tensor("blk.0.attn_v.weight").type());
    }
  }

  @Test
  void importanceAndOverridesReachTheQuantizer() throws IOException {
    float[] imp = new float[HIDDEN];
    Random r = new Random(3);
    for (int i = 0; i < imp.length; i++) {
      imp[i] = (float) Math.exp(r.nextGaussian() * 2);
    }
    Map<String, float[]> importance = new HashMap<>();
    importance.put("blk.0.attn_v.weight", imp);
    LlamaGgufExporter.Options withImp =
        new LlamaGgufExporter.Options(
            "m", LlamaFileType.Q4_K_M, Map.of("blk.1.attn_v.weight", GgmlType.Q4_0), importance, 2);
    Path a = dir.resolve("a.gguf");
    Path b = dir.resolve("b.gguf");
    LlamaGgufExporter.export(config(false), checkpoint(true, 4), tokenizer(), withImp, a);
    LlamaGgufExporter.export(
        config(false),
        checkpoint(true, 4),
        tokenizer(),
        LlamaGgufExporter.Options.of("m", LlamaFileType.Q4_K_M),
        b);
    try (GgufReader ra = GgufReader.open(a);
        GgufReader rb = GgufReader.open(b)) {
      assertEquals(GgmlType.Q4_0, ra.tensor("blk.1.attn_v.weight").type());
      assertFalse(
          java.util.Arrays.equals(
              ra.readTensorBytes("blk.0.attn_v.weight"),
              rb.readTensorBytes("blk.0.attn_v.weight")));
      assertArrayEquals(
          ra.readTensorBytes("blk.0.attn_k.weight"), rb.readTensorBytes("blk.0.attn_k.weight"));
    }
  }

  @Test
  void permutationMatchesConvertHfToGgufOnAHandExample() {
    // one head, head_dim 4, one column: rows [a0 a1 | b0 b1] -> [a0 b0 a1 b1]
    float[] w = {10, 11, 20, 21};
    assertArrayEquals(new float[] {10, 20, 11, 21}, LlamaGgufExporter.permuteForRope(w, 4, 1, 1));
    // two heads, head_dim 4, two columns
    float[] w2 = new float[16];
    for (int i = 0; i < 16; i++) {
      w2[i] = i;
    }
    float[] p = LlamaGgufExporter.permuteForRope(w2, 8, 2, 2);
    // numpy: w.reshape(2, 2, 2, 2).swapaxes(1, 2).reshape(8, 2)
    float[] numpy = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
    assertArrayEquals(numpy, p);
  }

  @Test
  void permutedWeightsGiveTheSameRotaryResultUnderGgmlsPairing() {
    // HF applies RoPE to pairs (i, i + d/2) of each head; ggml's normal mode to (2i, 2i + 1).
    // Permuting q_proj's rows must make ggml's rotation of W'x equal the permuted HF rotation.
    int heads = 2;
    int hd = 8;
    int cols = 5;
    Random r = new Random(5);
    float[] w = rnd(r, heads * hd * cols);
    float[] x = rnd(r, cols);
    float[] perm = LlamaGgufExporter.permuteForRope(w, heads * hd, cols, heads);
    int pos = 7;
    double[] hf = matvec(w, x, heads * hd, cols);
    double[] gg = matvec(perm, x, heads * hd, cols);
    for (int h = 0; h < heads; h++) {
      for (int i = 0; i < hd / 2; i++) {
        double th = pos * Math.pow(10000, -2.0 * i / hd);
        double c = Math.cos(th);
        double s = Math.sin(th);
        int a = h * hd + i;
        int b = h * hd + i + hd / 2;
        double hfA = hf[a] * c - hf[b] * s;
        double hfB = hf[b] * c + hf[a] * s;
        int ga = h * hd + 2 * i;
        int gb = ga + 1;
        double ggA = gg[ga] * c - gg[gb] * s;
        double ggB = gg[gb] * c + gg[ga] * s;
        assertEquals(hfA, ggA, 1e-12);
        assertEquals(hfB, ggB, 1e-12);
      }
    }
  }

  static double[] matvec(float[] w, float[] x, int rows, int cols) {
    double[] y = new double[rows];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        y[i] += (double) w[i * cols + j] * x[j];
      }
    }
    return y;
  }

  @Test
  void badConfigsAndCheckpointsAreRefusedWithReasons() {
    LlamaGgufExporter.Options o = LlamaGgufExporter.Options.of("x", LlamaFileType.Q8_0);
    ObjectNode noHidden = config(false);
    noHidden.remove("hidden_size");
    CheckpointFormatException e1 =
        assertThrows(
            CheckpointFormatException.class,
            () ->
                LlamaGgufExporter.export(
                    noHidden, checkpoint(true, 1), tokenizer(), o, dir.resolve("x.gguf")));
    assertTrue(e1.getMessage().contains("hidden_size"), e1.getMessage());

    ObjectNode wrongFfn = config(false);
    wrongFfn.put("intermediate_size", 320);
    CheckpointFormatException e2 =
        assertThrows(
            CheckpointFormatException.class,
            () ->
                LlamaGgufExporter.export(
                    wrongFfn, checkpoint(true, 1), tokenizer(), o, dir.resolve("y.gguf")));
    assertTrue(e2.getMessage().contains("gate_proj"), e2.getMessage());

    CheckpointFormatException e3 =
        assertThrows(
            CheckpointFormatException.class,
            () ->
                LlamaGgufExporter.export(
                    config(false), checkpoint(false, 1), tokenizer(), o, dir.resolve("z.gguf")));
    assertTrue(e3.getMessage().contains("lm_head"), e3.getMessage());

    ObjectNode scaled = config(false);
    scaled.putObject("rope_scaling").put("rope_type", "llama3");
    CheckpointFormatException e4 =
        assertThrows(
            CheckpointFormatException.class,
            () ->
                LlamaGgufExporter.export(
                    scaled, checkpoint(true, 1), tokenizer(), o, dir.resolve("w.gguf")));
    assertTrue(e4.getMessage().contains("rope_scaling.factor"), e4.getMessage());
    ObjectNode dynamic = config(false);
    dynamic.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", 2.0);
    assertTrue(
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        dynamic, checkpoint(true, 1), tokenizer(), o, dir.resolve("w.gguf")))
            .getMessage()
            .startsWith("not supported yet: GGUF export of rope_scaling.rope_type=dynamic"));
    ObjectNode mscale = config(false);
    mscale
        .putObject("rope_scaling")
        .put("rope_type", "yarn")
        .put("factor", 4.0)
        .put("mscale", 0.707)
        .put("mscale_all_dim", 1.0);
    assertTrue(
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        mscale, checkpoint(true, 1), tokenizer(), o, dir.resolve("w.gguf")))
            .getMessage()
            .contains("attention factor"));
    ObjectNode longrope = config(false);
    longrope.putObject("rope_scaling").put("rope_type", "longrope");
    assertEquals(
        "not supported: rope_scaling.rope_type=longrope",
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        longrope, checkpoint(true, 1), tokenizer(), o, dir.resolve("w.gguf")))
            .getMessage());

    ObjectNode mistral = config(false);
    mistral.put("model_type", "gpt2");
    assertThrows(
        CheckpointFormatException.class,
        () ->
            LlamaGgufExporter.export(
                mistral, checkpoint(true, 1), tokenizer(), o, dir.resolve("v.gguf")));
  }

  /** llama.cpp's llama arch has no window: the GGUF claims only the context it computes exactly. */
  @Test
  void mistralExportsAsLlamaWithItsWindowAsContext() throws IOException {
    ObjectNode mistral = config(false);
    mistral.put("model_type", "mistral");
    mistral.put("sliding_window", 512);
    Path out = dir.resolve("mistral.gguf");
    LlamaGgufExporter.export(
        mistral,
        checkpoint(true, 1),
        tokenizer(),
        LlamaGgufExporter.Options.of("mistral", LlamaFileType.Q8_0),
        out);
    try (GgufReader r = GgufReader.open(out)) {
      assertEquals("llama", r.require("general.architecture").asString());
      assertEquals(512L, r.require("llama.context_length").asLong());
    }
    mistral.putNull("sliding_window");
    LlamaGgufExporter.export(
        mistral,
        checkpoint(true, 1),
        tokenizer(),
        LlamaGgufExporter.Options.of("mistral", LlamaFileType.Q8_0),
        out);
    try (GgufReader r = GgufReader.open(out)) {
      assertEquals(2048L, r.require("llama.context_length").asLong());
    }
  }

  /** Adds the q/k/v biases every HF Qwen2 checkpoint has. */
  static InMemoryTensorSource withQkvBias(InMemoryTensorSource s, long seed) {
    Random r = new Random(seed);
    for (int l = 0; l < LAYERS; l++) {
      String p = "model.layers." + l + ".self_attn.";
      s.put(p + "q_proj.bias", rnd(r, HIDDEN), HIDDEN);
      s.put(p + "k_proj.bias", rnd(r, KV_HEADS * HEAD_DIM), KV_HEADS * HEAD_DIM);
      s.put(p + "v_proj.bias", rnd(r, KV_HEADS * HEAD_DIM), KV_HEADS * HEAD_DIM);
    }
    return s;
  }

  /** Adds Qwen3's per-head-dim q/k RMSNorm weights. */
  static InMemoryTensorSource withQkNorm(InMemoryTensorSource s, long seed) {
    Random r = new Random(seed);
    for (int l = 0; l < LAYERS; l++) {
      String p = "model.layers." + l + ".self_attn.";
      s.put(p + "q_norm.weight", rnd(r, HEAD_DIM), HEAD_DIM);
      s.put(p + "k_norm.weight", rnd(r, HEAD_DIM), HEAD_DIM);
    }
    return s;
  }

  @Test
  void qwen2AndQwen3KeepHfRowOrderAndGetTheQuantMixPerTensorName() throws IOException {
    for (String type : List.of("qwen2", "qwen3")) {
      ObjectNode c = config(false);
      c.put("model_type", type);
      InMemoryTensorSource src = checkpoint(true, 21);
      src = type.equals("qwen2") ? withQkvBias(src, 22) : withQkNorm(src, 23);
      Path f32 = dir.resolve(type + "-f32.gguf");
      LlamaGgufExporter.export(
          c, src, tokenizer(), LlamaGgufExporter.Options.of("q", LlamaFileType.F32), f32);
      try (GgufReader r = GgufReader.open(f32)) {
        assertEquals(type, r.require("general.architecture").asString());
        // NeoX RoPE: llama.cpp's qwen graphs want HF's rotate_half rows, not the llama permutation
        assertArrayEquals(
            src.get("model.layers.1.self_attn.q_proj.weight"),
            r.readTensorFloats("blk.1.attn_q.weight"));
        assertArrayEquals(
            src.get("model.layers.1.self_attn.k_proj.weight"),
            r.readTensorFloats("blk.1.attn_k.weight"));
        String extra = type.equals("qwen2") ? "blk.1.attn_k.bias" : "blk.1.attn_k_norm.weight";
        String hf =
            type.equals("qwen2")
                ? "model.layers.1.self_attn.k_proj.bias"
                : "model.layers.1.self_attn.k_norm.weight";
        assertArrayEquals(src.get(hf), r.readTensorFloats(extra));
      }
      Path q4 = dir.resolve(type + "-q4km.gguf");
      LlamaGgufExporter.export(
          c, src, tokenizer(), LlamaGgufExporter.Options.of("q", LlamaFileType.Q4_K_M), q4);
      try (GgufReader r = GgufReader.open(q4)) {
        // llama-quantize: 1-D stays F32; of 2 layers use_more_bits picks layer 1, whose attn_v and
        // ffn_down get Q6_K (ffn_down's 288-value rows fall back to Q8_0, layer 0's Q4_K to Q5_0);
        // output Q6_K; the rest Q4_K
        Map<String, GgmlType> want = new HashMap<>();
        want.put("token_embd.weight", GgmlType.Q4_K);
        want.put("output.weight", GgmlType.Q6_K);
        want.put("blk.0.attn_q.weight", GgmlType.Q4_K);
        want.put("blk.0.attn_v.weight", GgmlType.Q4_K);
        want.put("blk.1.attn_v.weight", GgmlType.Q6_K);
        want.put("blk.0.ffn_down.weight", GgmlType.Q5_0);
        want.put("blk.1.ffn_down.weight", GgmlType.Q8_0);
        want.put("blk.1.ffn_up.weight", GgmlType.Q4_K);
        want.put(
            type.equals("qwen2") ? "blk.0.attn_q.bias" : "blk.0.attn_q_norm.weight", GgmlType.F32);
        for (Map.Entry<String, GgmlType> e : want.entrySet()) {
          assertEquals(e.getValue(), r.tensor(e.getKey()).type(), type + " " + e.getKey());
        }
      }
    }
  }

  @Test
  void layoutsLlamaCppCannotLoadAreRefusedBeforeAnyFileIsWritten() {
    LlamaGgufExporter.Options o = LlamaGgufExporter.Options.of("x", LlamaFileType.Q8_0);
    // a Mixtral config over a dense checkpoint: the experts it names are not there
    ObjectNode mixtral = config(false);
    mixtral.put("model_type", "mixtral");
    mixtral.put("num_local_experts", 4);
    assertEquals(
        "tensor model.layers.0.block_sparse_moe.gate.weight is missing from the checkpoint",
        assertThrows(
                CheckpointFormatException.class,
                () ->
                    LlamaGgufExporter.export(
                        mixtral, checkpoint(true, 1), tokenizer(), o, dir.resolve("a.gguf")))
            .getMessage());
    assertFalse(Files.exists(dir.resolve("a.gguf")));
    ObjectNode qwen2 = config(false);
    qwen2.put("model_type", "qwen2");
    // llama.cpp's qwen2 loader requires the q/k/v biases
    assertEquals(
        "tensor model.layers.0.self_attn.q_proj.bias is missing from the checkpoint",
        assertThrows(
                CheckpointFormatException.class,
                () ->
                    LlamaGgufExporter.export(
                        qwen2, checkpoint(true, 1), tokenizer(), o, dir.resolve("b.gguf")))
            .getMessage());
    InMemoryTensorSource oBias = withQkvBias(checkpoint(true, 1), 2);
    oBias.put("model.layers.0.self_attn.o_proj.bias", new float[HIDDEN], HIDDEN);
    assertEquals(
        "not supported yet: tensor model.layers.0.self_attn.o_proj.bias has no place in the qwen2"
            + " GGUF layout",
        assertThrows(
                UnsupportedOperationException.class,
                () -> LlamaGgufExporter.export(qwen2, oBias, tokenizer(), o, dir.resolve("c.gguf")))
            .getMessage());
    ObjectNode windowed = qwen2.deepCopy();
    windowed.put("use_sliding_window", true);
    windowed.put("sliding_window", 512);
    assertEquals(
        "not supported yet: GGUF export of qwen2 with a sliding window of 512 (llama.cpp's qwen2"
            + " attends to the whole context)",
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        windowed,
                        withQkvBias(checkpoint(true, 1), 2),
                        tokenizer(),
                        o,
                        dir.resolve("d.gguf")))
            .getMessage());
    ObjectNode qwen3 = config(false);
    qwen3.put("model_type", "qwen3");
    // Qwen3 with attention_bias: llama.cpp's qwen3 loads no biases
    String msg =
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        qwen3,
                        withQkvBias(withQkNorm(checkpoint(true, 1), 3), 2),
                        tokenizer(),
                        o,
                        dir.resolve("e.gguf")))
            .getMessage();
    assertTrue(msg.endsWith("_proj.bias has no place in the qwen3 GGUF layout"), msg);
    ObjectNode llama3 = qwen3.deepCopy();
    llama3.put("max_position_embeddings", 131072);
    llama3
        .putObject("rope_scaling")
        .put("rope_type", "llama3")
        .put("factor", 8.0)
        .put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0)
        .put("original_max_position_embeddings", 8192);
    assertEquals(
        "not supported yet: GGUF export of qwen3 with llama3 RoPE scaling",
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    LlamaGgufExporter.export(
                        llama3,
                        withQkNorm(checkpoint(true, 1), 3),
                        tokenizer(),
                        o,
                        dir.resolve("f.gguf")))
            .getMessage());
    for (String f : List.of("a", "b", "c", "d", "e", "f")) {
      assertFalse(Files.exists(dir.resolve(f + ".gguf")), f);
    }
  }

  @Test
  void llama3ScalingWritesRopeFreqsFirst() throws IOException {
    ObjectNode c = config(true);
    c.put("max_position_embeddings", 131072);
    c.putObject("rope_scaling")
        .put("rope_type", "llama3")
        .put("factor", 32.0)
        .put("low_freq_factor", 1.0)
        .put("high_freq_factor", 4.0)
        .put("original_max_position_embeddings", 8192);
    Path out = dir.resolve("llama32.gguf");
    LlamaGgufExporter.export(
        c,
        checkpoint(false, 7),
        tokenizer(),
        LlamaGgufExporter.Options.of("llama32", LlamaFileType.Q8_0),
        out);
    String copyTo = System.getProperty("gguf.llama3.write"); // for read_gguf.py by hand
    if (copyTo != null) {
      Files.copy(out, Path.of(copyTo), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    RopeScaling rope = RopeScaling.from(c, HEAD_DIM);
    try (GgufReader r = GgufReader.open(out)) {
      GgufTensorInfo t = r.tensors().get(0);
      assertEquals("rope_freqs.weight", t.name());
      assertEquals(GgmlType.F32, t.type());
      assertArrayEquals(new long[] {HEAD_DIM / 2}, t.shape());
      float[] freqs = r.readTensorFloats("rope_freqs.weight");
      // ggml divides the unscaled frequency by rope_freqs: that must give transformers' inv_freq
      float[] base = rope.baseInvFreq();
      float[] scaled = rope.invFreq(1);
      for (int j = 0; j < freqs.length; j++) {
        assertEquals(scaled[j], base[j] / freqs[j], scaled[j] * 1e-5, "frequency " + j);
      }
      assertEquals(1f, freqs[0], "highest frequency kept");
      assertEquals(32f, freqs[freqs.length - 1], "lowest frequency divided by factor");
      assertFalse(r.metadata().containsKey("llama.rope.scaling.type"), "llama3 uses no key");
      assertFalse(r.tensors().stream().anyMatch(x -> x.name().equals("output.weight")), "tied");
      assertEquals(131072L, r.metadata().get("llama.context_length").asLong());
    }
  }

  @Test
  void linearAndYarnScalingWriteLlamaCppKeys() throws IOException {
    ObjectNode linear = config(false);
    linear.putObject("rope_scaling").put("type", "linear").put("factor", 4.0);
    Path a = dir.resolve("linear.gguf");
    LlamaGgufExporter.Options o = LlamaGgufExporter.Options.of("s", LlamaFileType.Q8_0);
    LlamaGgufExporter.export(linear, checkpoint(true, 8), tokenizer(), o, a);
    try (GgufReader r = GgufReader.open(a)) {
      assertEquals("linear", r.metadata().get("llama.rope.scaling.type").asString());
      assertEquals(4.0, r.metadata().get("llama.rope.scaling.factor").asDouble());
      assertFalse(r.tensors().stream().anyMatch(x -> x.name().equals("rope_freqs.weight")));
    }
    ObjectNode yarn = config(false);
    yarn.put("max_position_embeddings", 8192);
    yarn.putObject("rope_scaling")
        .put("rope_type", "yarn")
        .put("factor", 4.0)
        .put("original_max_position_embeddings", 2048)
        .put("beta_fast", 16.0);
    Path b = dir.resolve("yarn.gguf");
    LlamaGgufExporter.export(yarn, checkpoint(true, 8), tokenizer(), o, b);
    try (GgufReader r = GgufReader.open(b)) {
      Map<String, GgufValue> md = r.metadata();
      assertEquals("yarn", md.get("llama.rope.scaling.type").asString());
      assertEquals(4.0, md.get("llama.rope.scaling.factor").asDouble());
      assertEquals(2048L, md.get("llama.rope.scaling.original_context_length").asLong());
      assertEquals(16.0, md.get("llama.rope.scaling.yarn_beta_fast").asDouble());
      assertEquals(1.0, md.get("llama.rope.scaling.yarn_beta_slow").asDouble());
      assertEquals(8192L, md.get("llama.context_length").asLong());
    }
  }

  @Test
  void mapInputsWorkLikeJsonNodes() throws IOException {
    @SuppressWarnings("unchecked")
    Map<String, Object> cfg = JSON.convertValue(config(true), Map.class);
    @SuppressWarnings("unchecked")
    Map<String, Object> tok = JSON.convertValue(tokenizer(), Map.class);
    Path out = dir.resolve("m.gguf");
    LlamaGgufExporter.export(
        cfg, checkpoint(false, 6), tok, LlamaGgufExporter.Options.of("m", LlamaFileType.Q4_0), out);
    try (GgufReader r = GgufReader.open(out)) {
      assertEquals(GgmlType.Q4_0, r.tensor("blk.0.attn_q.weight").type());
      assertEquals(1L, r.metadata().get("general.file_type").asLong() / 2);
    }
  }

  @Test
  void sentencePieceStyleBpeBecomesTheLlamaTokenizerModel() throws IOException {
    ObjectNode t = JSON.createObjectNode();
    ObjectNode model = t.putObject("model");
    model.put("type", "BPE").put("byte_fallback", true).put("unk_token", "<unk>");
    ObjectNode vocab = model.putObject("vocab");
    String[] pieces = {"<unk>", "<s>", "</s>", "<0x00>", "<0x01>", "\u2581a", "\u2581the"};
    for (int i = 0; i < pieces.length; i++) {
      vocab.put(pieces[i], i);
    }
    ArrayNode added = t.putArray("added_tokens");
    added.addObject().put("id", 0).put("content", "<unk>").put("special", true);
    added.addObject().put("id", 1).put("content", "<s>").put("special", true);
    added.addObject().put("id", 2).put("content", "</s>").put("special", true);
    ObjectNode cfg = config(true);
    cfg.put("bos_token_id", 1);
    cfg.put("eos_token_id", 2);
    java.util.Map<String, GgufValue> md = LlamaTokenizerMetadata.from(t, cfg);
    assertEquals("llama", md.get("tokenizer.ggml.model").asString());
    List<Object> types = md.get("tokenizer.ggml.token_type").asList();
    assertEquals(List.of(2, 3, 3, 6, 6, 1, 1), types.subList(0, 7));
    assertEquals(5, types.get(7)); // padding up to vocab_size
    assertEquals(-5f, md.get("tokenizer.ggml.scores").asList().get(5));
    assertEquals(0L, md.get("tokenizer.ggml.unknown_token_id").asLong());
    assertEquals(1L, md.get("tokenizer.ggml.bos_token_id").asLong());
    assertFalse(md.containsKey("tokenizer.ggml.merges"));

    ObjectNode wordPiece = JSON.createObjectNode();
    wordPiece.putObject("model").put("type", "WordPiece");
    assertThrows(
        UnsupportedOperationException.class, () -> LlamaTokenizerMetadata.from(wordPiece, cfg));
  }

  @Test
  void fallbackTypes() {
    assertEquals(GgmlType.Q4_K, LlamaGgufExporter.fallbackType(GgmlType.Q4_K, 4096));
    assertEquals(GgmlType.Q5_0, LlamaGgufExporter.fallbackType(GgmlType.Q4_K, 11008 + 32));
    assertEquals(GgmlType.Q8_0, LlamaGgufExporter.fallbackType(GgmlType.Q6_K, 96));
    assertEquals(GgmlType.F16, LlamaGgufExporter.fallbackType(GgmlType.Q4_0, 100));
    assertEquals(GgmlType.F32, LlamaGgufExporter.fallbackType(GgmlType.F32, 7));
  }
}
