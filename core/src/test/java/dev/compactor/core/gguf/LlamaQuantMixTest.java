package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The per-tensor types of {@link LlamaQuantMix} against tables worked out by hand from llama.cpp's
 * {@code llama_tensor_get_type_impl} / {@code tensor_type_fallback} (src/llama-quant.cpp) for small
 * llama-shaped models. Each table row is {@code tensor: type}, layers written out.
 */
class LlamaQuantMixTest {

  /** Every matrix of a dense Llama in llama.cpp's names, with {@code [rows, cols]}. */
  static Map<String, long[]> tensors(int layers, int hidden, int kvRows, int ffn, boolean tied) {
    Map<String, long[]> t = new LinkedHashMap<>();
    t.put("token_embd.weight", new long[] {1000, hidden});
    for (int l = 0; l < layers; l++) {
      String b = "blk." + l + ".";
      t.put(b + "attn_norm.weight", new long[] {hidden});
      t.put(b + "attn_q.weight", new long[] {hidden, hidden});
      t.put(b + "attn_k.weight", new long[] {kvRows, hidden});
      t.put(b + "attn_v.weight", new long[] {kvRows, hidden});
      t.put(b + "attn_output.weight", new long[] {hidden, hidden});
      t.put(b + "ffn_gate.weight", new long[] {ffn, hidden});
      t.put(b + "ffn_up.weight", new long[] {ffn, hidden});
      t.put(b + "ffn_down.weight", new long[] {hidden, ffn});
    }
    if (!tied) {
      t.put("output.weight", new long[] {1000, hidden});
    }
    return t;
  }

  /**
   * {@code expected}: tensor-name suffix (or full name) to type; unnamed matrices get {@code rest}.
   */
  static void check(
      LlamaFileType ft,
      LlamaQuantMix.Model m,
      Map<String, long[]> tensors,
      Map<String, GgmlType> expected,
      GgmlType rest) {
    List<String> wrong = new ArrayList<>();
    for (Map.Entry<String, long[]> e : tensors.entrySet()) {
      GgmlType want =
          e.getValue().length == 1 ? GgmlType.F32 : expected.getOrDefault(e.getKey(), rest);
      GgmlType got = LlamaQuantMix.typeFor(ft, m, e.getKey(), e.getValue());
      if (want != got) {
        wrong.add(e.getKey() + ": expected " + want + ", found " + got);
      }
    }
    assertTrue(wrong.isEmpty(), ft + ": " + wrong);
  }

  static Map<String, GgmlType> layers(String tensor, GgmlType type, int... layers) {
    Map<String, GgmlType> m = new LinkedHashMap<>();
    for (int l : layers) {
      m.put("blk." + l + "." + tensor + ".weight", type);
    }
    return m;
  }

  @SafeVarargs
  static Map<String, GgmlType> merge(Map<String, GgmlType>... maps) {
    Map<String, GgmlType> m = new LinkedHashMap<>();
    for (Map<String, GgmlType> x : maps) {
      m.putAll(x);
    }
    return m;
  }

  @Test
  void useMoreBitsIsTheFirstAndLastEighthAndEveryThirdBetween() {
    List<Integer> eight = new ArrayList<>();
    List<Integer> thirtyTwo = new ArrayList<>();
    for (int i = 0; i < 32; i++) {
      if (i < 8 && LlamaQuantMix.useMoreBits(i, 8)) {
        eight.add(i);
      }
      if (LlamaQuantMix.useMoreBits(i, 32)) {
        thirtyTwo.add(i);
      }
    }
    assertEquals(List.of(0, 3, 6, 7), eight);
    // Llama-2 7B Q4_K_M: 16 of the 32 attn_v / ffn_down tensors are Q6_K
    assertEquals(List.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31), thirtyTwo);
  }

  @Test
  void eightExpertsGetLlamaCppsMixtralRulesAndTheRouterIsNeverQuantized() {
    // Mixtral-8x7B's layout (32 layers, 32 heads, 8 kv heads, 8 experts), rows of 4096 and 14336
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(32, 32, 8, false, false, "llama", 8);
    long[] sq = {4096, 4096};
    long[] kv = {1024, 4096};
    long[] upExps = {8, 14336, 4096};
    long[] downExps = {8, 4096, 14336};
    for (int l = 0; l < 32; l++) {
      String b = "blk." + l + ".";
      GgmlType down = LlamaQuantMix.useMoreBits(l, 32) ? GgmlType.Q6_K : GgmlType.Q4_K;
      Map<String, GgmlType> want = new LinkedHashMap<>();
      want.put(b + "attn_q.weight", GgmlType.Q4_K);
      want.put(b + "attn_k.weight", GgmlType.Q8_0);
      want.put(b + "attn_v.weight", GgmlType.Q8_0);
      want.put(b + "attn_output.weight", GgmlType.Q5_K);
      want.put(b + "ffn_gate_inp.weight", GgmlType.F32);
      want.put(b + "ffn_gate_exps.weight", GgmlType.Q4_K);
      want.put(b + "ffn_up_exps.weight", GgmlType.Q4_K);
      want.put(b + "ffn_down_exps.weight", down);
      for (Map.Entry<String, GgmlType> e : want.entrySet()) {
        String n = e.getKey();
        long[] shape =
            n.contains("attn_k") || n.contains("attn_v")
                ? kv
                : n.contains("down_exps")
                    ? downExps
                    : n.contains("_exps")
                        ? upExps
                        : n.contains("gate_inp") ? new long[] {8, 4096} : sq;
        assertEquals(e.getValue(), LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, m, n, shape), n);
      }
    }
    // Q5_K_M keeps attn_output at the default; F16 and Q8_0 files still keep the router F32
    assertEquals(
        GgmlType.Q5_K,
        LlamaQuantMix.typeFor(LlamaFileType.Q5_K_M, m, "blk.3.attn_output.weight", sq));
    for (LlamaFileType ft : List.of(LlamaFileType.F16, LlamaFileType.Q8_0, LlamaFileType.Q4_0)) {
      assertEquals(
          GgmlType.F32,
          LlamaQuantMix.typeFor(ft, m, "blk.0.ffn_gate_inp.weight", new long[] {8, 4096}),
          ft.name());
    }
    // the 8-expert bumps are for exactly 8 experts: 4 experts follow the dense rules
    LlamaQuantMix.Model four = new LlamaQuantMix.Model(32, 32, 8, false, false, "llama", 4);
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, four, "blk.5.attn_v.weight", kv));
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, four, "blk.5.attn_k.weight", kv));
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, four, "blk.5.attn_output.weight", sq));
  }

  @Test
  void phi3FusedQkvGetsOneMoreKQuantStepInTheMMixes() {
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(32, 32, 32, false, false, "phi3");
    long[] qkv = {9216, 3072};
    String n = "blk.0.attn_qkv.weight";
    assertEquals(GgmlType.Q5_K, LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, m, n, qkv));
    assertEquals(GgmlType.Q6_K, LlamaQuantMix.typeFor(LlamaFileType.Q5_K_M, m, n, qkv));
    assertEquals(GgmlType.Q4_K, LlamaQuantMix.typeFor(LlamaFileType.Q4_K_S, m, n, qkv));
    assertEquals(GgmlType.Q8_0, LlamaQuantMix.typeFor(LlamaFileType.Q8_0, m, n, qkv));
  }

  @Test
  void q4KMOnEightLayersWithSuperBlockRows() {
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(8, 8, 2, false, false);
    Map<String, GgmlType> q6 =
        merge(
            layers("attn_v", GgmlType.Q6_K, 0, 3, 6, 7),
            layers("ffn_down", GgmlType.Q6_K, 0, 3, 6, 7),
            Map.of("output.weight", GgmlType.Q6_K, "token_embd.weight", GgmlType.Q4_K));
    check(LlamaFileType.Q4_K_M, m, tensors(8, 256, 64, 512, false), q6, GgmlType.Q4_K);
  }

  @Test
  void q4KSOnEightLayersWithSuperBlockRows() {
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(8, 8, 2, false, false);
    Map<String, GgmlType> t =
        merge(
            layers("attn_v", GgmlType.Q5_K, 0, 1, 2, 3),
            layers("ffn_down", GgmlType.Q5_K, 0),
            Map.of("output.weight", GgmlType.Q6_K));
    check(LlamaFileType.Q4_K_S, m, tensors(8, 256, 64, 512, false), t, GgmlType.Q4_K);
  }

  @Test
  void tiedEmbeddingsAreQuantizedAsTheOutput() {
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(8, 8, 2, true, false);
    Map<String, GgmlType> t =
        merge(
            layers("attn_v", GgmlType.Q6_K, 0, 3, 6, 7),
            layers("ffn_down", GgmlType.Q6_K, 0, 3, 6, 7),
            Map.of("token_embd.weight", GgmlType.Q6_K));
    check(LlamaFileType.Q4_K_M, m, tensors(8, 256, 64, 512, true), t, GgmlType.Q4_K);
  }

  @Test
  void shortRowsFallBackAsLlamaCppDoes() {
    // hidden 128 and ffn 384: no row is a multiple of 256, all are multiples of 32
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(4, 4, 2, false, false);
    // 4 layers: n/8 = 0, 7n/8 = 3, so use_more_bits is layers 2 and 3
    Map<String, GgmlType> km =
        merge(
            layers("attn_v", GgmlType.Q8_0, 2, 3), // Q6_K -> Q8_0
            layers("ffn_down", GgmlType.Q8_0, 2, 3),
            Map.of("output.weight", GgmlType.Q8_0)); // 128 % 256 != 0 -> Q8_0 directly
    check(LlamaFileType.Q4_K_M, m, tensors(4, 128, 64, 384, false), km, GgmlType.Q5_0);
    Map<String, GgmlType> ks =
        merge(
            layers("attn_v", GgmlType.Q5_1, 0, 1, 2, 3), // Q5_K -> Q5_1
            Map.of("output.weight", GgmlType.Q8_0));
    check(LlamaFileType.Q4_K_S, m, tensors(4, 128, 64, 384, false), ks, GgmlType.Q5_0);
    // not even a multiple of 32: F16 (llama.cpp: "must use F16 due to unusual shape")
    assertEquals(
        GgmlType.F16,
        LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, m, "blk.0.attn_q.weight", new long[] {8, 100}));
  }

  @Test
  void seventyBGivesTheRemainingQ4KAttnVFiveBits() {
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(80, 64, 8, false, false);
    long[] v = {1024, 8192};
    for (int l = 0; l < 80; l++) {
      String name = "blk." + l + ".attn_v.weight";
      GgmlType km = LlamaQuantMix.useMoreBits(l, 80) ? GgmlType.Q6_K : GgmlType.Q5_K;
      assertEquals(km, LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, m, name, v), name);
      assertEquals(GgmlType.Q5_K, LlamaQuantMix.typeFor(LlamaFileType.Q4_K_S, m, name, v), name);
    }
    // 65B (80 layers, no grouped-query attention) keeps Q4_K
    LlamaQuantMix.Model m65 = new LlamaQuantMix.Model(80, 64, 64, false, false);
    assertEquals(
        GgmlType.Q4_K, LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, m65, "blk.10.attn_v.weight", v));
  }

  @Test
  void legacyTypesAndTheImatrixRuleForFfnDown() {
    Map<String, long[]> t = tensors(16, 256, 64, 512, false);
    Map<String, GgmlType> out = Map.of("output.weight", GgmlType.Q6_K);
    check(
        LlamaFileType.Q4_0, new LlamaQuantMix.Model(16, 8, 2, false, false), t, out, GgmlType.Q4_0);
    // with an imatrix, the first eighth of ffn_down (layers 0, 1 of 16) gets Q4_1 / Q5_1
    check(
        LlamaFileType.Q4_0,
        new LlamaQuantMix.Model(16, 8, 2, false, true),
        t,
        merge(out, layers("ffn_down", GgmlType.Q4_1, 0, 1)),
        GgmlType.Q4_0);
    check(
        LlamaFileType.Q5_0,
        new LlamaQuantMix.Model(16, 8, 2, false, true),
        t,
        merge(out, layers("ffn_down", GgmlType.Q5_1, 0, 1)),
        GgmlType.Q5_0);
    check(
        LlamaFileType.Q8_0,
        new LlamaQuantMix.Model(16, 8, 2, false, true),
        t,
        Map.of(),
        GgmlType.Q8_0);
    check(
        LlamaFileType.Q6_K,
        new LlamaQuantMix.Model(16, 8, 2, false, false),
        t,
        Map.of(),
        GgmlType.Q6_K);
    check(
        LlamaFileType.F16,
        new LlamaQuantMix.Model(16, 8, 2, false, false),
        t,
        Map.of(),
        GgmlType.F16);
  }

  @Test
  void fileTypeIdsAndNamesAreLlamaCpps() {
    assertEquals(15, LlamaFileType.Q4_K_M.id());
    assertEquals(14, LlamaFileType.Q4_K_S.id());
    assertEquals(17, LlamaFileType.Q5_K_M.id());
    assertEquals(7, LlamaFileType.Q8_0.id());
    assertEquals(18, LlamaFileType.Q6_K.id());
    assertEquals(LlamaFileType.Q4_K_M, LlamaFileType.parse("q4_k"));
    assertEquals(LlamaFileType.Q4_K_S, LlamaFileType.parse("Q4_K_S"));
    assertEquals(LlamaFileType.Q5_K_M, LlamaFileType.parse("q5_k"));
    assertEquals("q4_k_m", LlamaFileType.Q4_K_M.label());
    for (String recipeName : dev.compactor.core.recipe.QuantizeParams.GGUF_TYPES) {
      LlamaFileType.parse(recipeName);
    }
    for (LlamaFileType t : LlamaFileType.values()) {
      assertTrue(
          dev.compactor.core.recipe.QuantizeParams.GGUF_TYPES.contains(t.label()),
          t + " is accepted in recipes");
    }
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> LlamaFileType.parse("q3_k"));
    assertTrue(e.getMessage().contains("q4_k_s"), e.getMessage());
  }

  @Test
  void the70BRuleFollowsLlamaCppsModelTypePerArch() {
    // llama.cpp: LLaMA with 80 layers is 70B only with GQA (else 65B), Qwen2 with 80 layers is
    // always 70B, Qwen3 has no 70B type; only a 70B turns a Q4_K attn_v into Q5_K
    String v = "blk.5.attn_v.weight"; // past Q4_K_S's first 4 layers
    assertEquals(
        GgmlType.Q5_K,
        LlamaQuantMix.ruleType(
            LlamaFileType.Q4_K_S, new LlamaQuantMix.Model(80, 64, 8, false, false), v, 8192));
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.ruleType(
            LlamaFileType.Q4_K_S, new LlamaQuantMix.Model(80, 64, 64, false, false), v, 8192));
    assertEquals(
        GgmlType.Q5_K,
        LlamaQuantMix.ruleType(
            LlamaFileType.Q4_K_S,
            new LlamaQuantMix.Model(80, 64, 64, false, false, "qwen2"),
            "blk.5.attn_v.weight",
            8192));
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.ruleType(
            LlamaFileType.Q4_K_S,
            new LlamaQuantMix.Model(80, 64, 8, false, false, "qwen3"),
            "blk.5.attn_v.weight",
            8192));
  }

  @Test
  void qwen2MoeSharedExpertGateIsAVectorToGgmlAndTheSharedDownFollowsFfnDown() {
    // Qwen1.5-MoE-A2.7B: 24 layers, 16 heads, 60 experts, hidden 2048, shared width 5632
    LlamaQuantMix.Model m = new LlamaQuantMix.Model(24, 16, 16, false, false, "qwen2moe", 60);
    assertEquals(1, LlamaQuantMix.ggmlDims(new long[] {1, 2048}));
    assertEquals(2, LlamaQuantMix.ggmlDims(new long[] {60, 2048}));
    assertEquals(3, LlamaQuantMix.ggmlDims(new long[] {60, 1408, 2048}));
    assertEquals(
        GgmlType.F32,
        LlamaQuantMix.typeFor(
            LlamaFileType.Q4_K_M, m, "blk.3.ffn_gate_inp_shexp.weight", new long[] {1, 2048}));
    assertEquals(
        GgmlType.F32,
        LlamaQuantMix.typeFor(
            LlamaFileType.F16, m, "blk.3.ffn_gate_inp_shexp.weight", new long[] {1, 2048}));
    // layer 0 is in the first eighth (use_more_bits), layer 4 is not: as ffn_down
    assertEquals(
        GgmlType.Q6_K,
        LlamaQuantMix.typeFor(
            LlamaFileType.Q4_K_M, m, "blk.0.ffn_down_shexp.weight", new long[] {2048, 5632}));
    assertEquals(
        GgmlType.Q4_K,
        LlamaQuantMix.typeFor(
            LlamaFileType.Q4_K_M, m, "blk.4.ffn_down_shexp.weight", new long[] {2048, 5632}));
    // the experts' rows of 1408 are no multiple of 256: Q6_K falls back to Q8_0
    assertEquals(
        GgmlType.Q8_0,
        LlamaQuantMix.typeFor(
            LlamaFileType.Q4_K_M, m, "blk.0.ffn_down_exps.weight", new long[] {60, 2048, 1408}));
  }
}
