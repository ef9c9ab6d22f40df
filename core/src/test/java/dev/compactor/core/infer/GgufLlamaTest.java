package dev.compactor.core.infer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.quant.table.GgufToHf;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The native decoder against the project's DJL fp32 forward of the same weights: tiny-llama-v1 is
 * exported to GGUF (every matrix of one type, or a file type's llama-quantize mix such as Q4_K_M),
 * converted back to a Hugging Face checkpoint by {@link GgufToHf} (dequantized, rows un-permuted),
 * and both models score the same sequence. The native side decodes token by token through its KV
 * cache; DJL runs the whole sequence at once. The batched prefill is checked against the native
 * token-by-token path.
 */
class GgufLlamaTest {

  /** 24 byte tokens of English, BOS first (tiny-llama-v1 is a byte-level model, BOS = 256). */
  private static final int[] TOKENS = {
    256, 84, 104, 101, 32, 99, 111, 109, 109, 105, 116, 116, 101, 101, 32, 104, 97, 115, 32, 97,
    100, 111, 112, 116, 101
  };

  /**
   * Max |native - DJL| over all logits of the sequence. F32 and the quantized types have the same
   * ceiling: a block kernel computes d * sum(q * x) where DJL computes sum((q * d) * x), which
   * differs by fp32 rounding only. Measured on tiny-llama-v1 (|logits| up to 14): 8.6e-6 for each.
   */
  private static final double TOLERANCE = 1e-4;

  @TempDir Path dir;

  /** The model the comparisons export: tiny-llama-v1 unless a test swaps in a variant. */
  private Path model;

  @BeforeEach
  void shippedModel() {
    model = TinyReferenceModel.shipped();
  }

  @Test
  void f32LogitsMatchTheDjlForward() throws Exception {
    compare(LlamaFileType.F32, GgmlType.F32);
  }

  @Test
  void q8_0LogitsMatchTheDjlForwardOfTheDequantizedWeights() throws Exception {
    compare(LlamaFileType.Q8_0, GgmlType.Q8_0);
  }

  /**
   * Pruned shapes run natively as they are: half of each KV group's query heads and a quarter of
   * the MLP channels removed (q/o 64 wide over hidden 128, explicit head_dim, MLP 384), and a
   * depth- pruned copy with 3 of the 4 layers.
   */
  @Test
  void structuredAndDepthPrunedShapesMatchTheDjlForward() throws Exception {
    java.util.List<int[]> windows = new java.util.ArrayList<>();
    for (int w = 0; w < 4; w++) {
      int[] win = new int[32];
      for (int t = 0; t < win.length; t++) {
        win[t] = TOKENS[(w * 7 + t) % TOKENS.length];
      }
      windows.add(win);
    }
    Path structured = dir.resolve("structured");
    new dev.compactor.core.prune.structured.StructuredPruner(
            new dev.compactor.core.prune.structured.StructuredSpec(
                0.5,
                0.25,
                dev.compactor.core.prune.structured.StructuredSpec.Importance.ACTIVATION,
                dev.compactor.core.prune.structured.StructuredSpec.HeadMode.QUERY_HEADS,
                false))
        .prune(
            TinyReferenceModel.shipped(),
            structured,
            windows,
            Map.of(),
            dev.compactor.core.prune.structured.StructuredPruner.Progress.NONE);
    model = structured;
    assertEquals(384, dev.compactor.core.model.ModelConfig.read(structured).intermediateSize());
    compare(LlamaFileType.Q8_0, GgmlType.Q8_0);

    Path depth = dir.resolve("depth");
    dev.compactor.core.prune.depth.DepthPruner.prune(
        TinyReferenceModel.shipped(), depth, new int[] {1}, Map.of());
    model = depth;
    assertEquals(3, dev.compactor.core.model.ModelConfig.read(depth).numLayers());
    compare(LlamaFileType.Q8_0, GgmlType.Q8_0);
  }

  @Test
  void q4_0LogitsMatchTheDjlForwardOfTheDequantizedWeights() throws Exception {
    compare(LlamaFileType.Q4_0, GgmlType.Q4_0);
  }

  @Test
  void f16LogitsMatchTheDjlForwardOfTheDequantizedWeights() throws Exception {
    compare(LlamaFileType.F16, GgmlType.F16);
  }

  @Test
  void llama3RopeScalingThroughRopeFreqsMatchesTheDjlForward() throws Exception {
    model =
        withRopeScaling(
            "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                + " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 16}");
    compare(LlamaFileType.Q8_0, GgmlType.Q8_0);
  }

  @Test
  void linearRopeScalingMatchesTheDjlForward() throws Exception {
    model = withRopeScaling("{\"rope_type\": \"linear\", \"factor\": 4.0}");
    compare(LlamaFileType.F32, GgmlType.F32);
  }

  /** A copy of tiny-llama-v1 whose config.json carries {@code rope_scaling}. */
  private Path withRopeScaling(String ropeScalingJson) throws Exception {
    Path src = TinyReferenceModel.shipped();
    Path dst = Files.createDirectories(dir.resolve("scaled"));
    for (String f : new String[] {"model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
      Files.copy(src.resolve(f), dst.resolve(f));
    }
    String config = Files.readString(src.resolve("config.json")).trim();
    config =
        config.substring(0, config.lastIndexOf('}'))
            + ", \"rope_scaling\": "
            + ropeScalingJson
            + "}";
    Files.writeString(dst.resolve("config.json"), config);
    return dst;
  }

  @Test
  void oneThreadAndTwoThreadsGiveTheSameLogits() throws Exception {
    Path gguf = export(LlamaFileType.Q4_0, GgmlType.Q4_0);
    try (GgufLlama one = GgufLlama.load(gguf, 1);
        GgufLlama two = GgufLlama.load(gguf, 2)) {
      GgufLlama.Session a = one.session(TOKENS.length);
      GgufLlama.Session b = two.session(TOKENS.length);
      for (int t : TOKENS) {
        // each row is one thread's work either way: identical, not just close
        assertArrayEquals(a.next(t), b.next(t).clone());
      }
    }
  }

  @Test
  void q4_K_MFileMatchesTheDjlForwardOfTheDequantizedWeights() throws Exception {
    // tiny-llama-v1's Q4_K_M mix: Q4_K and Q6_K where rows are 512 long (ffn_down), Q5_0 / Q8_0
    // (llama.cpp's fallbacks) on the 128-long rows, embedding and head Q5_0
    compareFile(
        exportMix(LlamaFileType.Q4_K_M, Map.of()),
        GgmlType.Q4_K,
        GgmlType.Q6_K,
        GgmlType.Q5_0,
        GgmlType.Q8_0);
  }

  @Test
  void q6_KFileMatchesTheDjlForwardOfTheDequantizedWeights() throws Exception {
    compareFile(exportMix(LlamaFileType.Q6_K, Map.of()), GgmlType.Q6_K, GgmlType.Q8_0);
  }

  @Test
  void q4_1Q5_1AndQ5_KTensorsMatchTheDjlForward() throws Exception {
    Path gguf =
        exportMix(
            LlamaFileType.Q4_0,
            Map.of(
                "blk.1.ffn_up.weight", GgmlType.Q4_1,
                "blk.2.attn_q.weight", GgmlType.Q5_1,
                "blk.0.ffn_down.weight", GgmlType.Q5_K));
    compareFile(gguf, GgmlType.Q4_1, GgmlType.Q5_1, GgmlType.Q5_K, GgmlType.Q4_0);
  }

  @Test
  void batchedPrefillEqualsTokenByToken() throws Exception {
    Path gguf = exportMix(LlamaFileType.Q4_K_M, Map.of());
    Path f32 = export(LlamaFileType.F32, GgmlType.F32);
    for (Path file : new Path[] {gguf, f32}) {
      try (GgufLlama m = GgufLlama.load(file, 2)) {
        int n = TOKENS.length;
        GgufLlama.Session stepwise = m.session(n + 3);
        float[][] want = new float[n][];
        for (int p = 0; p < n; p++) {
          want[p] = stepwise.next(TOKENS[p]).clone();
        }
        // blocks of 7 tokens: the second and later blocks attend to cache filled by earlier ones
        GgufLlama.Session batched = m.session(n + 3);
        float[][] got = new float[n][];
        batched.prefill(TOKENS, 7, got);
        assertEquals(n, batched.position());
        for (int p = 0; p < n; p++) {
          assertArrayEquals(want[p], got[p], (float) TOLERANCE, file.getFileName() + " pos " + p);
        }
        // last-position-only prefill in one block gives the same last logits
        GgufLlama.Session last = m.session(n);
        assertArrayEquals(want[n - 1], last.prefill(TOKENS).clone(), (float) TOLERANCE);
        // decoding after the prefill reads the KV cache the block filled
        for (int t : new int[] {65, 66, 67}) {
          assertArrayEquals(
              stepwise.next(t).clone(), batched.next(t), (float) TOLERANCE, "decode after prefill");
        }
        assertThrows(IllegalStateException.class, () -> batched.prefill(new int[] {1}));
      }
    }
  }

  @Test
  void quantizedLogitsReallyComeFromTheQuantizedWeights() throws Exception {
    // guards the tolerance tests above against comparing an F32 model with itself
    Path f32 = export(LlamaFileType.F32, GgmlType.F32);
    Path q4 = export(LlamaFileType.Q4_0, GgmlType.Q4_0);
    double worst = 0;
    try (GgufLlama a = GgufLlama.load(f32, 1);
        GgufLlama b = GgufLlama.load(q4, 1)) {
      GgufLlama.Session sa = a.session(TOKENS.length);
      GgufLlama.Session sb = b.session(TOKENS.length);
      for (int t : TOKENS) {
        float[] x = sa.next(t);
        float[] y = sb.next(t);
        for (int i = 0; i < x.length; i++) {
          worst = Math.max(worst, Math.abs(x[i] - y[i]));
        }
      }
    }
    assertTrue(worst > 0.01, "Q4_0 vs F32 max |logit diff| " + worst);
  }

  @Test
  void theCausalLmAdapterGivesEachBatchRowItsOwnCache() throws Exception {
    Path gguf = export(LlamaFileType.Q8_0, GgmlType.Q8_0);
    int seq = 6;
    int[] ids = new int[2 * seq];
    for (int i = 0; i < seq; i++) {
      ids[i] = TOKENS[i];
      ids[seq + i] = TOKENS[TOKENS.length - 1 - i];
    }
    try (GgufCausalLM lm = new GgufCausalLM(GgufLlama.load(gguf, 2));
        NDManager m = NDManager.newBaseManager()) {
      NDArray out = lm.logits(m, m.create(ids, new Shape(2, seq)));
      assertEquals(new Shape(2, seq, lm.vocabSize()), out.getShape());
      float[] all = out.toFloatArray();
      for (int b = 0; b < 2; b++) {
        GgufLlama.Session s = lm.model().session(seq);
        for (int t = 0; t < seq; t++) {
          float[] want = s.next(ids[b * seq + t]);
          int off = (b * seq + t) * lm.vocabSize();
          // logits() prefills the row in one block; next() is the matrix-vector path
          assertArrayEquals(
              want, java.util.Arrays.copyOfRange(all, off, off + want.length), (float) TOLERANCE);
        }
      }
      try (CausalLM.Decoder d = lm.decoder(m, 1)) {
        NDArray step = d.step(m.create(java.util.Arrays.copyOf(ids, seq), new Shape(1, seq)));
        assertEquals(seq, d.position());
        assertArrayEquals(java.util.Arrays.copyOf(all, seq * lm.vocabSize()), step.toFloatArray());
      }
      assertThrows(UnsupportedOperationException.class, () -> lm.decoder(m, 2));
    }
  }

  @Test
  void theThreadSettingIsValidated() {
    assertEquals(3, InferThreads.parse(null, 3));
    assertEquals(2, InferThreads.parse(" 2 ", 3));
    assertThrows(IllegalArgumentException.class, () -> InferThreads.parse("0", 3));
    assertThrows(IllegalArgumentException.class, () -> InferThreads.parse("two", 3));
  }

  private Path export(LlamaFileType fileType, GgmlType type) throws Exception {
    Path gguf = dir.resolve(model.getFileName() + "-" + fileType + ".gguf");
    GgufExport.export(
        model, fileType, Map.of("output.weight", type, "token_embd.weight", type), Map.of(), gguf);
    try (GgufReader r = GgufReader.open(gguf)) {
      for (GgufTensorInfo t : r.tensors()) {
        if (t.shape().length == 2) {
          assertEquals(type, t.type(), t.name());
        }
      }
    }
    return gguf;
  }

  /** Exports with the file type's own llama-quantize mix plus {@code overrides}. */
  private Path exportMix(LlamaFileType fileType, Map<String, GgmlType> overrides) throws Exception {
    Path gguf = dir.resolve(fileType + "-mix.gguf");
    GgufExport.export(model, fileType, overrides, Map.of(), gguf);
    return gguf;
  }

  private void compare(LlamaFileType fileType, GgmlType type) throws Exception {
    compareFile(export(fileType, type), type);
  }

  /** The native decoder vs DJL on {@code gguf}, which must hold every one of {@code types}. */
  private void compareFile(Path gguf, GgmlType... types) throws Exception {
    java.util.Set<GgmlType> present = java.util.EnumSet.noneOf(GgmlType.class);
    try (GgufReader r = GgufReader.open(gguf)) {
      for (GgufTensorInfo t : r.tensors()) {
        present.add(t.type());
      }
    }
    for (GgmlType t : types) {
      assertTrue(present.contains(t), gguf.getFileName() + " has no " + t + " tensor: " + present);
    }
    GgmlType type = types[0];
    Path back = dir.resolve("hf-" + gguf.getFileName());
    GgufToHf.convert(gguf, model, back);
    float[][] expected = new float[TOKENS.length][];
    try (Transformer djl = Transformer.load(back, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      NDArray ids = m.create(TOKENS, new Shape(1, TOKENS.length));
      float[] all = djl.logits(m, ids).toFloatArray();
      int vocab = all.length / TOKENS.length;
      for (int p = 0; p < TOKENS.length; p++) {
        expected[p] = java.util.Arrays.copyOfRange(all, p * vocab, (p + 1) * vocab);
      }
    }
    double worst = 0;
    int[] djlGreedy = new int[TOKENS.length];
    int[] nativeGreedy = new int[TOKENS.length];
    try (GgufLlama nat = GgufLlama.load(gguf, 2)) {
      assertEquals(expected[0].length, nat.config().vocab());
      GgufLlama.Session s = nat.session(TOKENS.length);
      for (int p = 0; p < TOKENS.length; p++) {
        float[] got = s.next(TOKENS[p]);
        for (int i = 0; i < got.length; i++) {
          worst = Math.max(worst, Math.abs(got[i] - expected[p][i]));
        }
        djlGreedy[p] = GgufLlama.argmax(expected[p]);
        nativeGreedy[p] = GgufLlama.argmax(got);
      }
      System.err.printf(
          "native vs DJL %s %s: max |logit diff| %.3g, max |logit| %.3g%n",
          gguf.getFileName(), present, worst, maxAbs(expected));
      assertTrue(worst < TOLERANCE, type + ": max |logit diff| " + worst);
      assertArrayEquals(djlGreedy, nativeGreedy, "argmax at every position");
      // greedy generation: 16 new tokens from the first 8, against DJL re-scoring the sequence
      int[] prompt = java.util.Arrays.copyOf(TOKENS, 8);
      int[] gen = nat.generateGreedy(prompt, 16);
      assertArrayEquals(djlGreedyContinuation(back, prompt, 16), gen);
    }
  }

  /** Greedy continuation computed by the DJL forward over the growing sequence (no KV cache). */
  private static int[] djlGreedyContinuation(Path hf, int[] prompt, int n) throws Exception {
    int[] seq = java.util.Arrays.copyOf(prompt, prompt.length + n);
    try (Transformer djl = Transformer.load(hf, Device.cpu())) {
      for (int i = 0; i < n; i++) {
        int len = prompt.length + i;
        try (NDManager m = NDManager.newBaseManager()) {
          NDArray ids = m.create(java.util.Arrays.copyOf(seq, len), new Shape(1, len));
          float[] all = djl.logits(m, ids).toFloatArray();
          int vocab = all.length / len;
          seq[len] =
              GgufLlama.argmax(java.util.Arrays.copyOfRange(all, (len - 1) * vocab, all.length));
        }
      }
    }
    return java.util.Arrays.copyOfRange(seq, prompt.length, seq.length);
  }

  private static double maxAbs(float[][] v) {
    double m = 0;
    for (float[] row : v) {
      for (float f : row) {
        m = Math.max(m, Math.abs(f));
      }
    }
    return m;
  }
}
