package dev.compactor.core.gguf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Exports a Hugging Face Llama, Mistral, Mixtral, Qwen2, Qwen3, Phi-3, Qwen2-MoE or Qwen3-MoE
 * checkpoint as a GGUF v3 file that llama.cpp loads, streaming each tensor in chunks of rows
 * (positional reads, no whole tensor in memory; see {@link Options#chunkValues()}), so a 7B
 * checkpoint exports in a few hundred megabytes. It writes the {@code <arch>.*} hyper-parameters
 * (see {@link LlamaHyperParams}), the {@code tokenizer.ggml.*} vocabulary, and the weights under
 * llama.cpp's names.
 *
 * <p>Per architecture, as convert_hf_to_gguf.py and llama.cpp's loader (src/llama-model.cpp,
 * src/models/qwen3.cpp) have them:
 *
 * <ul>
 *   <li>{@code llama}: the q/k projection rows are permuted (see {@link #permuteForRope}), since
 *       llama.cpp's llama RoPE pairs neighbouring rows. Mixtral is this arch with experts: each
 *       layer's router and stacked 3-D expert tensors of {@link GgufExperts} instead of the dense
 *       MLP, each stack quantized row by row over {@code [E*out, in]}.
 *   <li>{@code qwen2}: no permutation (NeoX RoPE, the HF row order); {@code blk.N.attn_q.bias},
 *       {@code attn_k.bias}, {@code attn_v.bias} (F32), which llama.cpp requires; no o_proj bias.
 *   <li>{@code qwen3}: no permutation; {@code blk.N.attn_q_norm.weight} and {@code
 *       attn_k_norm.weight} (F32, one value per head dimension); no biases.
 *   <li>{@code phi3}: HF's fused {@code attn_qkv} and {@code ffn_up} (gate | up), no permutation.
 *   <li>{@code qwen2moe} / {@code qwen3moe}: qwen2's biases / qwen3's q/k norms, and in every layer
 *       the router and expert stacks of {@link GgufExperts} (qwen2moe with its shared expert); a
 *       config with dense layers or a renormalisation llama.cpp does not do is refused.
 * </ul>
 *
 * For every arch a tied head writes no {@code output.weight}: llama.cpp then uses {@code
 * token_embd.weight}. A checkpoint tensor with no place in the arch's layout is refused.
 *
 * <p>Types: the file declares {@link Options#fileType()} as {@code general.file_type} and holds
 * what llama-quantize writes for it: 1-D tensors (norms) are F32, every matrix gets the type {@link
 * LlamaQuantMix#typeFor} picks (e.g. Q4_K_M: Q6_K for output and for half the attn_v/ffn_down
 * layers, Q4_K elsewhere, with llama.cpp's fallbacks for short rows). {@link Options#overrides()}
 * wins over the mix (as llama-quantize's {@code --tensor-type}), still subject to the fallbacks of
 * {@link #fallbackType}.
 */
public final class LlamaGgufExporter {

  private static final Logger LOG = LoggerFactory.getLogger(LlamaGgufExporter.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Default {@link Options#chunkValues()}: 4 Mi values, 16 MiB of fp32 rows in flight. */
  public static final long DEFAULT_CHUNK_VALUES = 1L << 22;

  /**
   * Export settings. {@code overrides} and {@code importance} are keyed by GGUF tensor name ({@code
   * blk.0.attn_q.weight}); an importance vector has one entry per input column. A non-empty {@code
   * importance} also counts as llama-quantize's {@code --imatrix} for the mix rules. {@code
   * threads} workers quantize each chunk's rows; {@code chunkValues} bounds how many weights are
   * read and quantized at once (whole rows, or whole heads for q/k), which bounds the exporter's
   * memory.
   */
  public record Options(
      String modelName,
      LlamaFileType fileType,
      Map<String, GgmlType> overrides,
      Map<String, float[]> importance,
      int threads,
      long chunkValues) {

    public Options {
      java.util.Objects.requireNonNull(fileType, "fileType");
      overrides = Map.copyOf(overrides);
      importance = Map.copyOf(importance);
      if (threads < 1) {
        throw new IllegalArgumentException("threads must be >= 1, found " + threads);
      }
      if (chunkValues < 1) {
        throw new IllegalArgumentException("chunkValues must be >= 1, found " + chunkValues);
      }
    }

    /** With the default chunk size. */
    public Options(
        String modelName,
        LlamaFileType fileType,
        Map<String, GgmlType> overrides,
        Map<String, float[]> importance,
        int threads) {
      this(modelName, fileType, overrides, importance, threads, DEFAULT_CHUNK_VALUES);
    }

    /** llama-quantize's mix for {@code fileType}, no overrides, no imatrix, one thread. */
    public static Options of(String modelName, LlamaFileType fileType) {
      return new Options(modelName, fileType, Map.of(), Map.of(), 1);
    }

    /** The same settings with {@code threads} workers and chunks of {@code chunkValues}. */
    public Options withThreads(int threads, long chunkValues) {
      return new Options(modelName, fileType, overrides, importance, threads, chunkValues);
    }
  }

  /** What was written. */
  public record Result(Path path, List<GgufTensorInfo> tensors, long bytes) {}

  private LlamaGgufExporter() {}

  /** {@code config} and {@code tokenizer} as maps (e.g. parsed elsewhere) instead of JsonNodes. */
  public static Result export(
      Map<String, ?> config,
      TensorSource source,
      Map<String, ?> tokenizer,
      Options options,
      Path out)
      throws IOException {
    JsonNode c = JSON.valueToTree(config);
    JsonNode t = JSON.valueToTree(tokenizer);
    return export(c, source, t, options, out);
  }

  /** Writes {@code out} from the config.json, the weights and the tokenizer.json. */
  public static Result export(
      JsonNode config, TensorSource source, JsonNode tokenizer, Options options, Path out)
      throws IOException {
    return export(
        config,
        source,
        tokenizer,
        MissingNode.getInstance(),
        MissingNode.getInstance(),
        options,
        out);
  }

  /**
   * As {@link #export(JsonNode, TensorSource, JsonNode, Options, Path)}, with the model's
   * tokenizer_config.json and generation_config.json (missing nodes when absent) supplying BOS/EOS
   * ids, add_bos_token and the chat template.
   */
  public static Result export(
      JsonNode config,
      TensorSource source,
      JsonNode tokenizer,
      JsonNode tokenizerConfig,
      JsonNode generationConfig,
      Options options,
      Path out)
      throws IOException {
    if (config.has(dev.compactor.core.model.ModelConfig.LOW_RANK)) {
      throw new UnsupportedOperationException(
          dev.compactor.core.model.ModelConfig.LOW_RANK_REFUSAL);
    }
    LlamaHyperParams hp = LlamaHyperParams.from(config);
    List<Planned> plan = plan(hp, config, source, options);
    for (Planned p : plan) {
      float[] imp = options.importance().get(p.ggufName);
      long cols = p.shape[p.shape.length - 1];
      if (imp != null && imp.length != cols) {
        throw new IllegalArgumentException(
            "importance for " + p.ggufName + " has " + imp.length + " entries, expected " + cols);
      }
      if (imp != null && p.hfNames.size() > 1) {
        // llama-imatrix keeps one vector per expert for these; none is collected for experts
        throw new UnsupportedOperationException(
            "not supported yet: importance for the stacked expert tensor " + p.ggufName);
      }
    }
    List<GgufTensorInfo> tensors;
    try (GgufWriter w = GgufWriter.create(out)) {
      w.put("general.architecture", GgufValue.string(hp.arch()));
      w.put("general.name", GgufValue.string(options.modelName()));
      w.put(GgufWriter.ALIGNMENT_KEY, GgufValue.u32(GgufWriter.DEFAULT_ALIGNMENT));
      w.put("general.file_type", GgufValue.u32(options.fileType().id()));
      w.put("general.quantization_version", GgufValue.u32(2));
      hp.putMetadata(w);
      for (Map.Entry<String, GgufValue> e :
          LlamaTokenizerMetadata.from(
                  tokenizer, config, hp.isLlama(), tokenizerConfig, generationConfig)
              .entrySet()) {
        w.put(e.getKey(), e.getValue());
      }
      float[] ropeFreqs = hp.ropeFreqs();
      if (ropeFreqs != null) {
        // first, as convert_hf_to_gguf.py yields it before the checkpoint's tensors
        w.addTensor(LlamaHyperParams.ROPE_FREQS, new long[] {ropeFreqs.length}, GgmlType.F32);
      }
      for (Planned p : plan) {
        w.addTensor(p.ggufName, p.shape, p.type);
      }
      w.writeHeader();
      if (ropeFreqs != null) {
        ByteBuffer b = ByteBuffer.allocate(4 * ropeFreqs.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(ropeFreqs);
        w.writeTensor(LlamaHyperParams.ROPE_FREQS, b.array());
      }
      List<ChunkedTensorQuantizer.Job> jobs = new ArrayList<>(plan.size());
      for (Planned p : plan) {
        int cols = Math.toIntExact(p.shape[p.shape.length - 1]);
        float[] imp = options.importance().get(p.ggufName);
        long rows = 1;
        for (int d = 0; d < p.shape.length - 1; d++) {
          rows *= p.shape[d];
        }
        jobs.add(
            new ChunkedTensorQuantizer.Job(
                p.hfNames, p.ggufName, rows, cols, p.type, p.permuteHeads, imp));
      }
      try (ChunkedTensorQuantizer q =
          new ChunkedTensorQuantizer(source, options.threads(), options.chunkValues())) {
        q.run(jobs, w);
      }
      tensors = w.tensors();
    }
    long size = Files.size(out);
    LOG.info(
        "GGUF export of {}: {} tensors, {} bytes, to {}",
        options.modelName(),
        tensors.size(),
        size,
        out);
    return new Result(out, tensors, size);
  }

  /**
   * convert_hf_to_gguf.py's {@code permute(weights, n_head, n_head_kv)} for q_proj (nHead =
   * attention heads) and k_proj (nHead = key/value heads): HF stores each head's rows as [first
   * half of the rotary pairs; second half] (rotate_half layout), ggml's RoPE wants the pairs
   * interleaved. Row {@code h*hd + s*hd/2 + i} moves to {@code h*hd + 2*i + s}.
   */
  public static float[] permuteForRope(float[] w, int rows, int cols, int nHead) {
    if (rows % (2 * nHead) != 0 || (long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "cannot permute "
              + rows
              + "x"
              + cols
              + " ("
              + w.length
              + " values) into "
              + nHead
              + " heads of interleaved pairs");
    }
    int half = rows / nHead / 2;
    float[] out = new float[w.length];
    for (int h = 0; h < nHead; h++) {
      for (int s = 0; s < 2; s++) {
        for (int i = 0; i < half; i++) {
          int src = h * 2 * half + s * half + i;
          int dst = h * 2 * half + 2 * i + s;
          System.arraycopy(w, src * cols, out, dst * cols, cols);
        }
      }
    }
    return out;
  }

  /**
   * The type actually used for a row of {@code rowLength} values when {@code wanted} was asked: as
   * llama.cpp's {@code llama_tensor_get_type} does when a row is not a multiple of the k-quant
   * super-block, Q4_K falls back to Q5_0, Q5_K to Q5_1 and Q6_K to Q8_0; any block type falls back
   * to F16 when the row is not a multiple of 32 (llama.cpp refuses those tensors instead).
   */
  public static GgmlType fallbackType(GgmlType wanted, long rowLength) {
    if (wanted.fitsRowLength(rowLength)) {
      return wanted;
    }
    GgmlType fallback =
        switch (wanted) {
          case Q4_K -> GgmlType.Q5_0;
          case Q5_K -> GgmlType.Q5_1;
          case Q6_K -> GgmlType.Q8_0;
          default -> GgmlType.F16;
        };
    return fallback.fitsRowLength(rowLength) ? fallback : GgmlType.F16;
  }

  /** One GGUF tensor: its checkpoint tensors (the experts in order for a stacked one). */
  private record Planned(
      List<String> hfNames, String ggufName, long[] shape, GgmlType type, int permuteHeads) {}

  private static List<Planned> plan(
      LlamaHyperParams hp, JsonNode config, TensorSource src, Options o)
      throws CheckpointFormatException {
    List<Planned> plan = new ArrayList<>();
    java.util.Set<String> dropped = new java.util.HashSet<>();
    boolean phi3 = hp.arch().equals("phi3");
    long h = hp.hidden();
    long qRows = (long) hp.heads() * hp.headDim();
    long kvRows = (long) hp.kvHeads() * hp.headDim();
    boolean tied = hp.tiedEmbeddings() || !src.contains("lm_head.weight");
    LlamaQuantMix.Model m =
        new LlamaQuantMix.Model(
            hp.layers(),
            hp.heads(),
            hp.kvHeads(),
            tied,
            !o.importance().isEmpty(),
            hp.arch(),
            hp.experts());
    // the experts' checkpoint names and shapes, from the one table the model code uses (every
    // layer is sparse and alike, GgufExperts refuses anything else, so layer 0 names them all)
    ModelConfig moe = hp.experts() > 0 ? ModelConfig.fromJson(config.toString()) : null;
    Map<String, long[]> moeShapes = new HashMap<>();
    if (moe != null) {
      for (Layout.Spec spec : Layout.layer(moe, 0)) {
        moeShapes.put(spec.name(), spec.shape());
      }
    }
    // only llama.cpp's llama RoPE pairs neighbouring rows; qwen2/qwen3 use NeoX's halves as HF does
    int qHeads = hp.isLlama() ? hp.heads() : 0;
    int kHeads = hp.isLlama() ? hp.kvHeads() : 0;
    add(plan, src, o, m, "model.embed_tokens.weight", "token_embd.weight", 0, hp.vocabSize(), h);
    for (int l = 0; l < hp.layers(); l++) {
      String p = "model.layers." + l + ".";
      String b = "blk." + l + ".";
      add(plan, src, o, m, p + "input_layernorm.weight", b + "attn_norm.weight", 0, h);
      if (phi3) {
        // llama.cpp's phi3 keeps HF's fused [q | k | v] rows (NeoX RoPE, no permutation)
        long qkv = qRows + 2 * kvRows;
        add(plan, src, o, m, p + "self_attn.qkv_proj.weight", b + "attn_qkv.weight", 0, qkv, h);
      } else {
        add(plan, src, o, m, p + "self_attn.q_proj.weight", b + "attn_q.weight", qHeads, qRows, h);
        add(plan, src, o, m, p + "self_attn.k_proj.weight", b + "attn_k.weight", kHeads, kvRows, h);
        add(plan, src, o, m, p + "self_attn.v_proj.weight", b + "attn_v.weight", 0, kvRows, h);
      }
      switch (hp.arch()) {
        case "qwen2", "qwen2moe" -> {
          add(plan, src, o, m, p + "self_attn.q_proj.bias", b + "attn_q.bias", 0, qRows);
          add(plan, src, o, m, p + "self_attn.k_proj.bias", b + "attn_k.bias", 0, kvRows);
          add(plan, src, o, m, p + "self_attn.v_proj.bias", b + "attn_v.bias", 0, kvRows);
        }
        case "qwen3", "qwen3moe" -> {
          long hd = hp.headDim();
          add(plan, src, o, m, p + "self_attn.q_norm.weight", b + "attn_q_norm.weight", 0, hd);
          add(plan, src, o, m, p + "self_attn.k_norm.weight", b + "attn_k_norm.weight", 0, hd);
        }
        default -> {}
      }
      add(plan, src, o, m, p + "self_attn.o_proj.weight", b + "attn_output.weight", 0, h, qRows);
      add(plan, src, o, m, p + "post_attention_layernorm.weight", b + "ffn_norm.weight", 0, h);
      if (moe != null) {
        for (GgufExperts.Tensor t : GgufExperts.layer(moe)) {
          List<String> hf = t.hf().stream().map(n -> p + n).toList();
          long[] one = moeShapes.get(t.hf().get(0));
          add(plan, src, o, m, hf, b + t.gguf(), t.stacked(), 0, one);
        }
      } else if (phi3) {
        // llama.cpp's phi3 reads ffn_up as [gate | up] (2*ff rows) and splits it at run time
        long gu = 2L * hp.ffn();
        add(plan, src, o, m, p + "mlp.gate_up_proj.weight", b + "ffn_up.weight", 0, gu, h);
        add(plan, src, o, m, p + "mlp.down_proj.weight", b + "ffn_down.weight", 0, h, hp.ffn());
      } else {
        add(plan, src, o, m, p + "mlp.gate_proj.weight", b + "ffn_gate.weight", 0, hp.ffn(), h);
        add(plan, src, o, m, p + "mlp.up_proj.weight", b + "ffn_up.weight", 0, hp.ffn(), h);
        add(plan, src, o, m, p + "mlp.down_proj.weight", b + "ffn_down.weight", 0, h, hp.ffn());
      }
      if (hp.isLlama() && moe == null) {
        llamaBiases(plan, src, o, m, p, b, qRows, kvRows, h, hp.ffn(), dropped);
      }
    }
    add(plan, src, o, m, "model.norm.weight", "output_norm.weight", 0, h);
    boolean hasHead = src.contains("lm_head.weight");
    if (!hp.tiedEmbeddings() && !hasHead) {
      throw new CheckpointFormatException(
          "lm_head.weight is missing and tie_word_embeddings is false");
    }
    if (hasHead && !hp.tiedEmbeddings()) {
      add(plan, src, o, m, "lm_head.weight", "output.weight", 0, hp.vocabSize(), h);
    }
    for (String name : src.names()) {
      boolean known =
          name.equals("lm_head.weight")
              || name.endsWith("rotary_emb.inv_freq")
              || dropped.contains(name)
              || plan.stream().anyMatch(p -> p.hfNames.contains(name));
      if (!known) {
        throw new UnsupportedOperationException(
            "not supported yet: tensor "
                + name
                + " has no place in the "
                + hp.arch()
                + " GGUF layout");
      }
    }
    return plan;
  }

  /**
   * The optional biases of llama.cpp's llama graph ({@code attn_q/k/v/output.bias}, {@code
   * ffn_gate/up/down.bias}), present when config.json has {@code attention_bias} / {@code mlp_bias}
   * (FLAP's bias compensation writes them). llama.cpp loads {@code attn_q.bias} as {@code [n_embd]}
   * and convert_hf_to_gguf.py would permute q/k biases for RoPE; the compensation's q/k/v biases
   * are zeros, which are the same as no bias, so those are left out; nonzero q/k/v biases are
   * refused.
   */
  private static void llamaBiases(
      List<Planned> plan,
      TensorSource src,
      Options o,
      LlamaQuantMix.Model m,
      String p,
      String b,
      long qRows,
      long kvRows,
      long h,
      long ffn,
      java.util.Set<String> dropped)
      throws CheckpointFormatException {
    for (String qkv : List.of("q_proj", "k_proj", "v_proj")) {
      String name = p + "self_attn." + qkv + ".bias";
      if (!src.contains(name)) {
        continue;
      }
      float[] v;
      try {
        v = src.readFloats(name);
      } catch (IOException e) {
        throw new CheckpointFormatException("cannot read " + name + ": " + e.getMessage());
      }
      for (float x : v) {
        if (x != 0f) {
          throw new UnsupportedOperationException(
              "not supported yet: GGUF export of a nonzero "
                  + name
                  + " for llama.cpp's llama (only zero q/k/v biases, which are left out)");
        }
      }
      dropped.add(name);
    }
    if (src.contains(p + "self_attn.o_proj.bias")) {
      add(plan, src, o, m, p + "self_attn.o_proj.bias", b + "attn_output.bias", 0, h);
    }
    if (src.contains(p + "mlp.down_proj.bias")) {
      add(plan, src, o, m, p + "mlp.gate_proj.bias", b + "ffn_gate.bias", 0, ffn);
      add(plan, src, o, m, p + "mlp.up_proj.bias", b + "ffn_up.bias", 0, ffn);
      add(plan, src, o, m, p + "mlp.down_proj.bias", b + "ffn_down.bias", 0, h);
    }
  }

  private static void add(
      List<Planned> plan,
      TensorSource src,
      Options o,
      LlamaQuantMix.Model m,
      String hf,
      String gguf,
      int permuteHeads,
      long... expected)
      throws CheckpointFormatException {
    add(plan, src, o, m, List.of(hf), gguf, false, permuteHeads, expected);
  }

  /**
   * Plans {@code gguf} from the checkpoint tensors {@code hf}, each of shape {@code expected}: one
   * tensor as it is, or ({@code stacked}) all of them along a new slowest dimension.
   */
  private static void add(
      List<Planned> plan,
      TensorSource src,
      Options o,
      LlamaQuantMix.Model m,
      List<String> hf,
      String gguf,
      boolean stacked,
      int permuteHeads,
      long... expected)
      throws CheckpointFormatException {
    for (String name : hf) {
      if (!src.contains(name)) {
        throw new CheckpointFormatException("tensor " + name + " is missing from the checkpoint");
      }
      long[] found = src.info(name).shape();
      if (!Arrays.equals(found, expected)) {
        throw new CheckpointFormatException(
            "tensor "
                + name
                + ": expected shape "
                + Arrays.toString(expected)
                + " from config.json, found "
                + Arrays.toString(found));
      }
    }
    long[] shape = expected;
    if (stacked) {
      shape = new long[expected.length + 1];
      shape[0] = hf.size();
      System.arraycopy(expected, 0, shape, 1, expected.length);
    }
    GgmlType type;
    if (o.overrides().containsKey(gguf)) {
      GgmlType wanted = o.overrides().get(gguf);
      type = fallbackType(wanted, shape[shape.length - 1]);
      if (type != wanted) {
        LOG.info(
            "{}: rows of {} do not fit {} blocks, using {}",
            gguf,
            shape[shape.length - 1],
            wanted,
            type);
      }
    } else {
      type = LlamaQuantMix.typeFor(o.fileType(), m, gguf, shape);
    }
    plan.add(new Planned(hf, gguf, shape, type, permuteHeads));
  }
}
