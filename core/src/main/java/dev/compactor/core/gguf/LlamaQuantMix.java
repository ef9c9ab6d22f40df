package dev.compactor.core.gguf;

/**
 * The tensor type llama-quantize gives each tensor of a LLaMA-family model for a {@link
 * LlamaFileType}: a port of {@code llama_tensor_get_type} ({@code llama_tensor_get_type_impl} and
 * {@code tensor_type_fallback}) from llama.cpp's {@code src/llama-quant.cpp}, restricted to the
 * branches a Llama (dense or Mixtral-style mixture of experts), Qwen2, Qwen3 or Phi-3 reaches for
 * the file types in {@link LlamaFileType} (the rules look at tensor names only, except the 70B one,
 * see {@link #is70B}, and the 8-expert ones):
 *
 * <ul>
 *   <li>{@code output.weight} (and {@code token_embd.weight} when the embeddings are tied, as
 *       llama.cpp then quantizes it as the output): Q8_0 when its rows are not a multiple of the
 *       default type's block, else Q6_K unless the default is Q8_0.
 *   <li>{@code token_embd.weight} (untied): the default type.
 *   <li>{@code attn_v}: Q4_K_M and Q5_K_M give Q6_K to the {@link #useMoreBits} layers; Q4_K_S
 *       gives Q5_K to the first 4 layers; a 70B model (80 layers, grouped-query attention) turns a
 *       remaining Q4_K into Q5_K.
 *   <li>{@code ffn_down}: Q4_K_M and Q5_K_M give Q6_K to the {@link #useMoreBits} layers; Q4_K_S
 *       gives Q5_K to the first eighth of the layers; Q4_0 / Q5_0 with an importance matrix give
 *       Q4_1 / Q5_1 to the first eighth.
 *   <li>{@code attn_qkv} (Phi-3's fused projection): Q5_K for Q4_K_M, Q6_K for Q5_K_M.
 *   <li>{@code ffn_gate_inp_shexp} (qwen2moe's {@code [1, hidden]} shared-expert gate): F32, a
 *       vector to {@code ggml_n_dims}, which llama-quantize leaves unquantized.
 *   <li>{@code ffn_gate_inp} (the experts' router): never quantized; it stays F32, as
 *       convert_hf_to_gguf.py writes it and llama-quantize leaves it ({@code quantize &=
 *       name.find("ffn_gate_inp.weight") == npos}), whatever the file type.
 *   <li>a model with exactly 8 experts (Mixtral 8x7B, 8x22B): {@code attn_v} and {@code attn_k} are
 *       Q8_0 (after every other attn_v rule), {@code attn_output} is Q5_K for Q4_K_S and Q4_K_M.
 *   <li>everything else: the default type. The stacked experts {@code ffn_gate_exps}, {@code
 *       ffn_up_exps}, {@code ffn_down_exps} follow the rules of their dense names (llama.cpp
 *       matches {@code "ffn_down"} anywhere in the name), one tensor per layer.
 * </ul>
 *
 * Then the fallback for rows that are not a multiple of the chosen type's block: Q4_K to Q5_0, Q5_K
 * to Q5_1, Q6_K to Q8_0, and F16 when even that does not fit (llama.cpp has no fallback for the
 * 32-value types and stops; this project writes F16 instead, see {@link
 * LlamaGgufExporter#fallbackType}).
 *
 * <p>llama.cpp counts attn_v and ffn_down tensors in the order of its weight map, which sorts by
 * layer number first, so for one such tensor per layer the counter is the layer index; this port
 * reads the layer from the tensor name ({@code blk.N.}).
 */
public final class LlamaQuantMix {

  /**
   * What the rules look at besides the tensor.
   *
   * @param layers decoder layers ({@code n_layer}, also {@code n_attention_wv} and {@code
   *     n_ffn_down} for a dense Llama)
   * @param heads attention heads
   * @param kvHeads key/value heads
   * @param tiedEmbeddings no separate {@code output.weight}
   * @param hasImatrix an importance matrix is given (any tensor)
   * @param arch llama.cpp's architecture ({@code llama}, {@code qwen2}, {@code qwen3}), which
   *     decides the model type the 70B rule looks at
   * @param experts experts per layer ({@code n_expert}), 0 for a dense MLP
   */
  public record Model(
      int layers,
      int heads,
      int kvHeads,
      boolean tiedEmbeddings,
      boolean hasImatrix,
      String arch,
      int experts) {

    /** A dense model. */
    public Model(
        int layers,
        int heads,
        int kvHeads,
        boolean tiedEmbeddings,
        boolean hasImatrix,
        String arch) {
      this(layers, heads, kvHeads, tiedEmbeddings, hasImatrix, arch, 0);
    }

    /** A dense llama-arch model. */
    public Model(int layers, int heads, int kvHeads, boolean tiedEmbeddings, boolean hasImatrix) {
      this(layers, heads, kvHeads, tiedEmbeddings, hasImatrix, "llama");
    }
  }

  private LlamaQuantMix() {}

  /** {@code use_more_bits}: the first and last eighth of the layers and every third one between. */
  public static boolean useMoreBits(int layer, int layers) {
    return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
  }

  /**
   * The type of {@code ggufName} (shape in GGUF order reversed, i.e. {@code [rows, cols]} as the
   * exporter plans it; a 1-D tensor, or one whose other dimensions are 1, is not quantized and
   * stays F32).
   */
  public static GgmlType typeFor(LlamaFileType ft, Model m, String ggufName, long[] shape) {
    if (ggmlDims(shape) < 2 || ggufName.contains("ffn_gate_inp.weight")) {
      return GgmlType.F32;
    }
    GgmlType def = ft.defaultType();
    if (!def.isQuantized()) {
      return def;
    }
    long cols = shape[shape.length - 1];
    return LlamaGgufExporter.fallbackType(ruleType(ft, m, ggufName, cols), cols);
  }

  /**
   * ggml's {@code ggml_n_dims}: the dimensions up to the last one above 1 in ggml order (leading 1s
   * of this row-major shape do not count), which llama-quantize requires to be at least 2 before it
   * quantizes (qwen2moe's {@code [1, hidden]} shared-expert gate is a vector to it).
   */
  static int ggmlDims(long[] shape) {
    int d = shape.length;
    while (d > 1 && shape[shape.length - d] == 1) {
      d--;
    }
    return d;
  }

  /** {@code llama_tensor_get_type_impl}: the type before the row-length fallback. */
  static GgmlType ruleType(LlamaFileType ft, Model m, String name, long cols) {
    GgmlType t = ft.defaultType();
    boolean isOutput = name.equals("output.weight");
    boolean isTokenEmbd = name.equals("token_embd.weight");
    if (isOutput || (m.tiedEmbeddings() && isTokenEmbd)) {
      if (cols % t.blockSize() != 0) {
        return GgmlType.Q8_0;
      }
      return t == GgmlType.Q8_0 ? t : GgmlType.Q6_K;
    }
    if (isTokenEmbd) {
      return t;
    }
    if (name.contains("attn_v.weight")) {
      int layer = layerOf(name, m.layers());
      if ((ft == LlamaFileType.Q4_K_M || ft == LlamaFileType.Q5_K_M)
          && useMoreBits(layer, m.layers())) {
        t = GgmlType.Q6_K;
      } else if (ft == LlamaFileType.Q4_K_S && layer < 4) {
        t = GgmlType.Q5_K;
      }
      if (is70B(m) && t == GgmlType.Q4_K) {
        // attn_v is 8x smaller than attn_q there: more bits for almost no size
        t = GgmlType.Q5_K;
      }
      if (m.experts() == 8) {
        // llama.cpp: "for the 8-expert model, bumping this to Q8_0 trades just ~128MB"
        t = GgmlType.Q8_0;
      }
      return t;
    }
    if (name.contains("attn_k.weight")) {
      return m.experts() == 8 ? GgmlType.Q8_0 : t;
    }
    if (name.contains("attn_output.weight")) {
      if (m.experts() == 8 && (ft == LlamaFileType.Q4_K_S || ft == LlamaFileType.Q4_K_M)) {
        t = GgmlType.Q5_K;
      }
      return t;
    }
    if (name.contains("attn_qkv.weight")) {
      // Phi-3's fused q|k|v
      if (ft == LlamaFileType.Q4_K_M) {
        t = GgmlType.Q5_K;
      } else if (ft == LlamaFileType.Q5_K_M) {
        t = GgmlType.Q6_K;
      }
      return t;
    }
    if (name.contains("ffn_down")) {
      int layer = layerOf(name, m.layers());
      int n = m.layers();
      if (ft == LlamaFileType.Q4_K_M || ft == LlamaFileType.Q5_K_M) {
        if (useMoreBits(layer, n)) {
          t = GgmlType.Q6_K;
        }
      } else if (ft == LlamaFileType.Q4_K_S && layer < n / 8) {
        t = GgmlType.Q5_K;
      } else if ((ft == LlamaFileType.Q4_0 || ft == LlamaFileType.Q5_0)
          && m.hasImatrix()
          && layer < n / 8) {
        t = ft == LlamaFileType.Q4_0 ? GgmlType.Q4_1 : GgmlType.Q5_1;
      }
      return t;
    }
    return t;
  }

  /**
   * llama.cpp's {@code LLM_TYPE_70B} (src/llama-model.cpp, load_hparams): for LLaMA 80 layers and
   * fewer kv heads than heads (else 65B); for Qwen2 any 80 layers; Qwen3 has no 70B type.
   */
  static boolean is70B(Model m) {
    return switch (m.arch()) {
      case "llama" -> m.layers() == 80 && m.heads() != m.kvHeads();
      case "qwen2" -> m.layers() == 80;
      default -> false;
    };
  }

  private static int layerOf(String name, int layers) {
    if (!name.startsWith("blk.")) {
      throw new IllegalArgumentException("expected a blk.N. tensor name, found " + name);
    }
    int dot = name.indexOf('.', 4);
    int layer = Integer.parseInt(name.substring(4, dot));
    if (layer < 0 || layer >= layers) {
      throw new IllegalArgumentException(
          "bad layer " + layer + " for tensor " + name + ", must be in [0, " + layers + ")");
    }
    return layer;
  }
}
