package dev.compactor.core.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The architecture of a causal LM, read from a Hugging Face {@code config.json}. Supported: the
 * Llama family ({@code llama}, {@code mistral}, {@code qwen2}: RoPE, RMSNorm, SiLU-gated MLP,
 * grouped-query attention), two Llama-shaped variants that compression stages do not know yet
 * ({@code qwen3}: per-head RMSNorm of q and k before RoPE; {@code phi3}: fused {@code qkv_proj} and
 * {@code gate_up_proj}), the mixtures of experts Mixtral ({@code mixtral}: Mistral attention, each
 * MLP a sparse mixture of SiLU experts behind a top-k router), Qwen2-MoE ({@code qwen2_moe}: Qwen2
 * attention, sparse layers with a gated shared expert) and Qwen3-MoE ({@code qwen3_moe}: Qwen3
 * attention), and GPT-2 (learned positions, LayerNorm, gelu_new). Anything else is refused with
 * {@link UnsupportedModelException} rather than run wrongly.
 *
 * <p>RoPE theta and {@code rope_scaling} (llama3, linear, dynamic, yarn) live in {@link
 * RopeScaling}, which every forward takes its cos/sin tables from.
 *
 * <p>Sliding-window attention follows HF's masks: with window {@code W} position {@code i} sees
 * {@code j} when {@code j <= i} and {@code i - j < W}. Mistral and Phi-3 window every layer; Qwen2
 * and Qwen3 only with {@code use_sliding_window}, and then the layers from {@code
 * max_window_layers} on (or as {@code layer_types} says). {@link #toJson()} writes the input back
 * with every unknown field preserved.
 *
 * <p>A Llama-family config may carry {@value #MOEFICATION} (see {@link #moeficationExperts()}): the
 * dense MLP then runs only its routed expert slices.
 */
public final class ModelConfig {

  /** Which forward the config asks for. */
  public enum Family {
    LLAMA,
    /** Llama layout plus {@code self_attn.q_norm}/{@code k_norm} [head_dim] before RoPE. */
    QWEN3,
    /**
     * Llama forward with q, k, v in one {@code qkv_proj} and gate, up in one {@code gate_up_proj}.
     */
    PHI3,
    /**
     * Mistral attention; the MLP is {@code block_sparse_moe}: a router {@code gate} [experts,
     * hidden] and {@code experts.E.w1/w3/w2} (gate, up, down), top-k of the softmaxed router.
     */
    MIXTRAL,
    /**
     * Qwen2 attention (q/k/v biases per {@code qkv_bias}); a sparse layer's MLP is {@code mlp.gate}
     * plus {@code mlp.experts.E.gate_proj/up_proj/down_proj} and, unless {@code
     * shared_expert_intermediate_size} is 0, {@code mlp.shared_expert} scaled by {@code
     * sigmoid(mlp.shared_expert_gate(x))}; the other layers a dense MLP of {@code
     * intermediate_size}.
     */
    QWEN2_MOE,
    /** Qwen3 attention (q/k norms); sparse layers as {@link #QWEN2_MOE} without a shared expert. */
    QWEN3_MOE,
    GPT2
  }

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final ObjectNode raw;
  private final Family family;
  private final String modelType;
  private final int vocabSize;
  private final int hiddenSize;
  private final int intermediateSize;
  private final int numLayers;
  private final int numHeads;
  private final int numKvHeads;
  private final int headDim;
  private final double normEps;
  private final double ropeTheta;
  private final RopeScaling rope;
  private final int maxPositions;
  private final boolean qkvBias;
  private final boolean outputBias;
  private final boolean mlpBias;
  private final boolean tieWordEmbeddings;
  private final int slidingWindow;
  private final boolean[] windowedLayers;
  private final int numExperts;
  private final int expertsPerToken;
  private final int expertIntermediateSize;
  private final int sharedExpertIntermediateSize;
  private final boolean normTopkProb;
  private final boolean[] sparseLayers;
  private final int moeficationExperts;
  private final int moeficationTopK;
  private final java.util.Map<String, Integer> lowRank;
  private final int[] layerIntermediateSizes;

  /** The config field of a MoEfied dense model (see {@link #moeficationExperts()}). */
  public static final String MOEFICATION = "compactor_moefication";

  /**
   * The config field of a model with low-rank factorized linears: {@code {"<full linear name>":
   * rank, ...}} (see {@link #lowRank()}).
   */
  public static final String LOW_RANK = "compactor_low_rank";

  /**
   * The config field of a model whose decoder layers have MLPs of different widths (non-uniform
   * structured pruning): one {@code intermediate_size} per layer, {@code intermediate_size} itself
   * their maximum. Hugging Face's Llama-family configs have one width, so only Compactor loads it.
   */
  public static final String LAYER_INTERMEDIATE_SIZES = "compactor_intermediate_sizes";

  /** What stages that only read dense {@code X.weight} linears say to a factorized model. */
  public static final String LOW_RANK_REFUSAL =
      "not supported yet: low-rank factorized linears (factorize with --merge first)";

  private ModelConfig(ObjectNode raw) {
    // Checkpoints.open serves cross-layer shared tensors dense, so the model this config describes
    // is dense: a stage that saves it must not claim its tensors are shared.
    raw.remove(dev.compactor.core.io.SharedTensorSource.KEY);
    this.raw = raw;
    this.modelType = text(raw, "model_type", null);
    if (modelType == null) {
      throw new IllegalArgumentException(
          "config.json: expected a \"model_type\" field, found none");
    }
    JsonNode architectures = raw.get("architectures");
    if (architectures != null && architectures.isArray() && architectures.size() > 0) {
      String arch = architectures.get(0).asText();
      if (!arch.endsWith("ForCausalLM")
          && !arch.equals("GPT2LMHeadModel")
          && !arch.equals("GPT2Model")) {
        throw new UnsupportedModelException(
            "not supported: " + modelType + " architecture " + arch + " (only causal LMs)");
      }
    }
    switch (modelType) {
      case "llama", "mistral", "qwen2", "qwen3", "phi3", "mixtral", "qwen2_moe", "qwen3_moe" -> {
        family =
            switch (modelType) {
              case "qwen3" -> Family.QWEN3;
              case "phi3" -> Family.PHI3;
              case "mixtral" -> Family.MIXTRAL;
              case "qwen2_moe" -> Family.QWEN2_MOE;
              case "qwen3_moe" -> Family.QWEN3_MOE;
              default -> Family.LLAMA;
            };
        vocabSize = req(raw, "vocab_size");
        hiddenSize = req(raw, "hidden_size");
        intermediateSize = req(raw, "intermediate_size");
        numLayers = req(raw, "num_hidden_layers");
        numHeads = req(raw, "num_attention_heads");
        numKvHeads = opt(raw, "num_key_value_heads", numHeads);
        headDim = opt(raw, "head_dim", numHeads > 0 ? hiddenSize / numHeads : 0);
        normEps = dbl(raw, "rms_norm_eps", 1e-6);
        dbl(raw, "rope_theta", 10000.0); // type check; RopeScaling also reads rope_parameters
        maxPositions = opt(raw, "max_position_embeddings", 2048);
        // HF's Phi-3 and Mixtral linears have no biases whatever the config says.
        boolean phi3 = modelType.equals("phi3");
        boolean mixtral = family == Family.MIXTRAL;
        boolean qwen2Moe = family == Family.QWEN2_MOE;
        boolean qwenMoe = qwen2Moe || family == Family.QWEN3_MOE;
        // Qwen2-MoE's attention reads qkv_bias (default true; older HF hard-codes the biases)
        // and never attention_bias; its o_proj has no bias.
        boolean attentionBias =
            !phi3 && !mixtral && !qwen2Moe && bool(raw, "attention_bias", false);
        qkvBias =
            modelType.equals("qwen2") || attentionBias || (qwen2Moe && bool(raw, "qkv_bias", true));
        outputBias = !modelType.equals("qwen2") && attentionBias;
        double partialRotary = dbl(raw, "partial_rotary_factor", 1.0);
        if (partialRotary != 1.0 && !phi3) {
          // modeling_llama / qwen2 / qwen3 / mistral / mixtral rotate the whole head
          throw new UnsupportedModelException(
              "not supported yet: partial_rotary_factor "
                  + partialRotary
                  + " ("
                  + modelType
                  + "; only phi3's attention rotates part of the head)");
        }
        mlpBias = !phi3 && !mixtral && !qwenMoe && bool(raw, "mlp_bias", false);
        tieWordEmbeddings = bool(raw, "tie_word_embeddings", false);
        String act = text(raw, "hidden_act", "silu");
        if (!act.equals("silu") && !act.equals("swish")) {
          throw new UnsupportedModelException(
              "not supported yet: hidden_act " + act + " (only silu for " + modelType + ")");
        }
        if (mixtral && !raw.has("rope_theta") && !raw.has("rope_parameters")) {
          // MixtralConfig's default theta is 1e6, not the 10000 of the other families.
          ObjectNode withTheta = raw.deepCopy();
          withTheta.put("rope_theta", 1e6);
          rope = RopeScaling.from(withTheta, headDim);
        } else {
          rope = RopeScaling.from(raw, headDim, phi3);
        }
        ropeTheta = rope.theta();
        boolean qwen = modelType.startsWith("qwen");
        boolean windowed = !qwen || bool(raw, "use_sliding_window", false);
        if (qwenMoe && windowed) {
          // HF versions disagree on which Qwen MoE layers a window applies to (every other layer
          // below max_window_layers for qwen2_moe in v5, all layers for qwen3_moe); published
          // checkpoints set use_sliding_window false.
          throw new UnsupportedModelException(
              "not supported yet: use_sliding_window=true (" + modelType + ")");
        }
        slidingWindow = windowed ? opt(raw, "sliding_window", 0) : 0;
        windowedLayers = windowedLayers(raw, qwen, slidingWindow, numLayers);
        if (mixtral) {
          numExperts = opt(raw, "num_local_experts", 8);
          expertsPerToken = opt(raw, "num_experts_per_tok", 2);
          expertIntermediateSize = intermediateSize;
          sharedExpertIntermediateSize = 0;
          normTopkProb = true;
          sparseLayers = new boolean[Math.max(0, numLayers)];
          java.util.Arrays.fill(sparseLayers, true);
        } else if (qwenMoe) {
          // defaults of HF's Qwen2MoeConfig / Qwen3MoeConfig
          numExperts = opt(raw, "num_experts", qwen2Moe ? 60 : 128);
          expertsPerToken = opt(raw, "num_experts_per_tok", qwen2Moe ? 4 : 8);
          expertIntermediateSize = opt(raw, "moe_intermediate_size", qwen2Moe ? 1408 : 768);
          sharedExpertIntermediateSize =
              qwen2Moe ? opt(raw, "shared_expert_intermediate_size", 5632) : 0;
          normTopkProb = bool(raw, "norm_topk_prob", false);
          sparseLayers = sparseLayers(raw, numLayers, numExperts);
        } else {
          numExperts = 0;
          expertsPerToken = 0;
          expertIntermediateSize = 0;
          sharedExpertIntermediateSize = 0;
          normTopkProb = false;
          sparseLayers = new boolean[Math.max(0, numLayers)];
        }
      }
      case "gpt2" -> {
        family = Family.GPT2;
        vocabSize = opt(raw, "vocab_size", 50257);
        hiddenSize = opt(raw, "n_embd", 768);
        intermediateSize = opt(raw, "n_inner", 4 * hiddenSize);
        numLayers = opt(raw, "n_layer", 12);
        numHeads = opt(raw, "n_head", 12);
        numKvHeads = numHeads;
        headDim = numHeads > 0 ? hiddenSize / numHeads : 0;
        normEps = dbl(raw, "layer_norm_epsilon", 1e-5);
        ropeTheta = 0;
        rope = null;
        maxPositions = opt(raw, "n_positions", opt(raw, "n_ctx", 1024));
        qkvBias = true;
        outputBias = true;
        mlpBias = true;
        tieWordEmbeddings = true;
        slidingWindow = 0;
        windowedLayers = new boolean[numLayers];
        numExperts = 0;
        expertsPerToken = 0;
        expertIntermediateSize = 0;
        sharedExpertIntermediateSize = 0;
        normTopkProb = false;
        sparseLayers = new boolean[Math.max(0, numLayers)];
        if (!bool(raw, "tie_word_embeddings", true)) {
          throw new UnsupportedModelException("not supported yet: gpt2 with an untied lm_head");
        }
        String act = text(raw, "activation_function", "gelu_new");
        if (!act.equals("gelu_new")) {
          throw new UnsupportedModelException(
              "not supported yet: activation_function " + act + " (only gelu_new for gpt2)");
        }
        if (bool(raw, "scale_attn_by_inverse_layer_idx", false)
            || bool(raw, "reorder_and_upcast_attn", false)
            || !bool(raw, "scale_attn_weights", true)) {
          throw new UnsupportedModelException(
              "not supported yet: gpt2 attention scaling variants (scale_attn_by_inverse_layer_idx,"
                  + " reorder_and_upcast_attn, scale_attn_weights=false)");
        }
      }
      default -> throw new UnsupportedModelException("not supported: " + modelType);
    }
    JsonNode moefication = raw.get(MOEFICATION);
    if (moefication == null || moefication.isNull()) {
      moeficationExperts = 0;
      moeficationTopK = 0;
    } else {
      boolean llamaMlp = family == Family.LLAMA || family == Family.QWEN3;
      if (!llamaMlp || mlpBias) {
        throw new UnsupportedModelException(
            "not supported yet: "
                + MOEFICATION
                + " on "
                + modelType
                + (llamaMlp ? " with mlp_bias" : "")
                + " (only separate gate_proj/up_proj/down_proj without bias)");
      }
      moeficationExperts = req(moefication, "num_experts");
      moeficationTopK = req(moefication, "experts_per_token");
      String router = text(moefication, "router", "linear");
      if (!router.equals("linear")) {
        throw new UnsupportedModelException(
            "not supported: " + MOEFICATION + ".router=" + router + " (only linear)");
      }
    }
    this.lowRank = lowRank(raw.get(LOW_RANK));
    this.layerIntermediateSizes = layerWidths(raw.get(LAYER_INTERMEDIATE_SIZES));
    if (!lowRank.isEmpty() && (family == Family.GPT2 || moe() || moeficationExperts > 0)) {
      throw new UnsupportedModelException(
          "not supported yet: "
              + LOW_RANK
              + " on "
              + modelType
              + (moeficationExperts > 0 ? " with " + MOEFICATION : "")
              + " (only dense Llama-family decoders)");
    }
    validate();
  }

  private java.util.Map<String, Integer> lowRank(JsonNode node) {
    if (node == null || node.isNull()) {
      return java.util.Map.of();
    }
    if (!node.isObject()) {
      throw new IllegalArgumentException(
          "config.json: expected an object for \"" + LOW_RANK + "\", found " + node);
    }
    java.util.Map<String, Integer> m = new java.util.LinkedHashMap<>();
    for (var it = node.fields(); it.hasNext(); ) {
      var e = it.next();
      JsonNode v = e.getValue();
      if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 1) {
        throw new IllegalArgumentException(
            "config.json: expected a positive integer rank for "
                + LOW_RANK
                + "."
                + e.getKey()
                + ", found "
                + v);
      }
      String name = e.getKey();
      boolean inLayer = false;
      if (name.startsWith("model.layers.")) {
        String rest = name.substring("model.layers.".length());
        int dot = rest.indexOf('.');
        if (dot > 0 && rest.substring(0, dot).chars().allMatch(Character::isDigit)) {
          int layer = Integer.parseInt(rest.substring(0, dot));
          inLayer = layer < numLayers;
        }
      }
      if (!inLayer) {
        throw new IllegalArgumentException(
            "config.json: "
                + LOW_RANK
                + " names \""
                + name
                + "\", expected a linear of a decoder layer (model.layers.N.<linear>, N < "
                + numLayers
                + ")");
      }
      m.put(name, v.intValue());
    }
    return java.util.Collections.unmodifiableMap(m);
  }

  /**
   * Which layers use the window, as HF derives {@code layer_types}: an explicit {@code layer_types}
   * wins; else Qwen windows layers {@code >= max_window_layers} (default 28), the others all.
   */
  private static boolean[] windowedLayers(JsonNode raw, boolean qwen, int window, int layers) {
    boolean[] out = new boolean[Math.max(0, layers)];
    if (window <= 0) {
      return out;
    }
    JsonNode types = raw.get("layer_types");
    if (types != null && !types.isNull()) {
      if (!types.isArray() || types.size() != layers) {
        throw new IllegalArgumentException(
            "config.json: expected \"layer_types\" to list " + layers + " layers, found " + types);
      }
      for (int i = 0; i < layers; i++) {
        String t = types.get(i).asText();
        switch (t) {
          case "sliding_attention" -> out[i] = true;
          case "full_attention" -> out[i] = false;
          default -> throw new UnsupportedModelException("not supported yet: layer type " + t);
        }
      }
      return out;
    }
    int first = qwen ? opt(raw, "max_window_layers", 28) : 0;
    for (int i = first; i < layers; i++) {
      out[i] = true;
    }
    return out;
  }

  /**
   * Qwen MoE's sparse layers as HF's decoder layer picks its MLP: layer {@code i} is sparse when it
   * is not in {@code mlp_only_layers} and {@code (i + 1) % decoder_sparse_step == 0}.
   */
  private static boolean[] sparseLayers(JsonNode raw, int layers, int experts) {
    boolean[] out = new boolean[Math.max(0, layers)];
    int step = opt(raw, "decoder_sparse_step", 1);
    if (step < 1) {
      throw new IllegalArgumentException(
          "config.json: expected a positive \"decoder_sparse_step\", found " + step);
    }
    for (int i = 0; i < out.length; i++) {
      out[i] = experts > 0 && (i + 1) % step == 0;
    }
    JsonNode only = raw.get("mlp_only_layers");
    if (only != null && !only.isNull()) {
      if (!only.isArray()) {
        throw new IllegalArgumentException(
            "config.json: expected \"mlp_only_layers\" to be a list of layer indices, found "
                + only);
      }
      for (JsonNode n : only) {
        if (!n.isIntegralNumber()
            || !n.canConvertToInt()
            || n.intValue() < 0
            || n.intValue() >= layers) {
          throw new IllegalArgumentException(
              "config.json: expected \"mlp_only_layers\" to hold layer indices 0.."
                  + (layers - 1)
                  + ", found "
                  + n);
        }
        out[n.intValue()] = false;
      }
    }
    return out;
  }

  /** Parses {@code config.json} text. */
  public static ModelConfig fromJson(String json) {
    JsonNode node;
    try {
      node = JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("config.json is not valid JSON: " + e.getMessage(), e);
    }
    if (!(node instanceof ObjectNode object)) {
      throw new IllegalArgumentException("config.json: expected a JSON object, found " + node);
    }
    return new ModelConfig(object.deepCopy());
  }

  /** Reads {@code config.json} from a file, or from a model directory holding one. */
  public static ModelConfig read(Path path) throws IOException {
    Path file = Files.isDirectory(path) ? path.resolve("config.json") : path;
    return fromJson(Files.readString(file));
  }

  /**
   * A Llama config built in code (for tests, benchmarks and models trained from scratch): untied
   * head, no biases, rope theta 10000, eps 1e-5.
   */
  public static ModelConfig llama(
      int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int maxPos) {
    ObjectNode n = JSON.createObjectNode();
    n.putArray("architectures").add("LlamaForCausalLM");
    n.put("model_type", "llama");
    n.put("vocab_size", vocab);
    n.put("hidden_size", hidden);
    n.put("intermediate_size", intermediate);
    n.put("num_hidden_layers", layers);
    n.put("num_attention_heads", heads);
    n.put("num_key_value_heads", kvHeads);
    n.put("max_position_embeddings", maxPos);
    n.put("rms_norm_eps", 1e-5);
    n.put("rope_theta", 10000.0);
    n.put("hidden_act", "silu");
    n.put("tie_word_embeddings", false);
    return new ModelConfig(n);
  }

  /** A copy with some fields replaced (e.g. {@code {"tie_word_embeddings": true}}). */
  public ModelConfig with(String jsonFields) {
    ObjectNode copy = raw.deepCopy();
    ObjectNode extra = (ObjectNode) fromJsonNode(jsonFields);
    copy.setAll(extra);
    return new ModelConfig(copy);
  }

  private static JsonNode fromJsonNode(String json) {
    try {
      return JSON.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not valid JSON: " + json, e);
    }
  }

  /** {@code torch_dtype} as config.json gives it ("float32", "bfloat16", ...), or null. */
  public String torchDtype() {
    JsonNode n = raw.get("torch_dtype");
    return n == null || n.isNull() ? null : n.asText();
  }

  /** The config as HF {@code config.json} text; fields this class does not know are kept. */
  public String toJson() {
    try {
      return JSON.writeValueAsString(raw);
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void validate() {
    positive("vocab_size", vocabSize);
    positive("hidden size", hiddenSize);
    positive("intermediate size", intermediateSize);
    positive("number of layers", numLayers);
    positive("number of attention heads", numHeads);
    positive("num_key_value_heads", numKvHeads);
    positive("max positions", maxPositions);
    if (family == Family.GPT2 || !raw.has("head_dim")) {
      if (hiddenSize % numHeads != 0) {
        throw new IllegalArgumentException(
            "config.json: hidden size "
                + hiddenSize
                + " must be divisible by the number of heads "
                + numHeads);
      }
    }
    positive("head_dim", headDim);
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "config.json: num_attention_heads "
              + numHeads
              + " must be a multiple of num_key_value_heads "
              + numKvHeads);
    }
    if (moe()) {
      String expertsField = family == Family.MIXTRAL ? "num_local_experts" : "num_experts";
      positive(expertsField, numExperts);
      if (expertsPerToken < 1 || expertsPerToken > numExperts) {
        throw new IllegalArgumentException(
            "config.json: expected num_experts_per_tok between 1 and "
                + expertsField
                + " "
                + numExperts
                + ", found "
                + expertsPerToken);
      }
      positive("moe_intermediate_size", expertIntermediateSize);
      if (sharedExpertIntermediateSize < 0) {
        throw new IllegalArgumentException(
            "config.json: expected shared_expert_intermediate_size >= 0, found "
                + sharedExpertIntermediateSize);
      }
    }
    if (moeficationExperts != 0) {
      if (moeficationExperts < 1 || intermediateSize % moeficationExperts != 0) {
        throw new IllegalArgumentException(
            "config.json: expected "
                + MOEFICATION
                + ".num_experts to divide intermediate_size "
                + intermediateSize
                + ", found "
                + moeficationExperts);
      }
      if (moeficationTopK < 1 || moeficationTopK > moeficationExperts) {
        throw new IllegalArgumentException(
            "config.json: expected "
                + MOEFICATION
                + ".experts_per_token between 1 and num_experts "
                + moeficationExperts
                + ", found "
                + moeficationTopK);
      }
    }
    if (family != Family.GPT2 && headDim % 2 != 0) {
      throw new IllegalArgumentException(
          "config.json: RoPE needs an even head_dim, found " + headDim);
    }
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  private static void positive(String what, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(
          "config.json: expected a positive " + what + ", found " + value);
    }
  }

  private static int req(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException("config.json: missing required field \"" + field + "\"");
    }
    if (!v.canConvertToInt() || !v.isIntegralNumber()) {
      throw new IllegalArgumentException(
          "config.json: expected an integer for \"" + field + "\", found " + v);
    }
    return v.intValue();
  }

  private static int opt(JsonNode n, String field, int dflt) {
    JsonNode v = n.get(field);
    return v == null || v.isNull() ? dflt : req(n, field);
  }

  private static double dbl(JsonNode n, String field, double dflt) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException(
          "config.json: expected a number for \"" + field + "\", found " + v);
    }
    return v.doubleValue();
  }

  private static boolean bool(JsonNode n, String field, boolean dflt) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isBoolean()) {
      throw new IllegalArgumentException(
          "config.json: expected true/false for \"" + field + "\", found " + v);
    }
    return v.booleanValue();
  }

  private static String text(JsonNode n, String field, String dflt) {
    JsonNode v = n.get(field);
    return v == null || v.isNull() ? dflt : v.asText();
  }

  public Family family() {
    return family;
  }

  public String modelType() {
    return modelType;
  }

  public int vocabSize() {
    return vocabSize;
  }

  public int hiddenSize() {
    return hiddenSize;
  }

  /** The MLP width: every layer's, or with per-layer widths their maximum. */
  public int intermediateSize() {
    return intermediateSize;
  }

  /** Layer {@code layer}'s MLP width ({@link #LAYER_INTERMEDIATE_SIZES}, else the one width). */
  public int intermediateSize(int layer) {
    return layerIntermediateSizes == null ? intermediateSize : layerIntermediateSizes[layer];
  }

  /**
   * The input widths of the decoder linears, for group-size checks: hidden, every layer's MLP width
   * (once each) and the attention output width.
   */
  public int[] linearInputWidths() {
    java.util.TreeSet<Integer> w = new java.util.TreeSet<>();
    w.add(hiddenSize);
    for (int i = 0; i < numLayers; i++) {
      w.add(intermediateSize(i));
    }
    w.add(numHeads * headDim);
    return w.stream().mapToInt(Integer::intValue).toArray();
  }

  /** Whether the layers' MLP widths differ ({@link #LAYER_INTERMEDIATE_SIZES}). */
  public boolean perLayerWidths() {
    return layerIntermediateSizes != null;
  }

  /**
   * Refuses per-layer MLP widths for a stage or export that assumes one width.
   *
   * @throws UnsupportedOperationException "not supported yet: {@code what} of a model with
   *     per-layer MLP widths"
   */
  public void requireUniformWidths(String what) {
    if (perLayerWidths()) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + what
              + " of a model with per-layer MLP widths ("
              + LAYER_INTERMEDIATE_SIZES
              + ")");
    }
  }

  /**
   * Cuts {@code config}'s {@link #LAYER_INTERMEDIATE_SIZES} (if any) down to the layers {@code
   * kept} (old indices, ascending) and sets {@code intermediate_size} to their maximum, for stages
   * that remove layers (depth pruning, students).
   */
  public static void keepLayerWidths(ObjectNode config, int[] kept) {
    JsonNode widths = config.get(LAYER_INTERMEDIATE_SIZES);
    if (widths == null || !widths.isArray()) {
      return;
    }
    com.fasterxml.jackson.databind.node.ArrayNode out = config.arrayNode();
    int max = 0;
    for (int k : kept) {
      if (k < 0 || k >= widths.size()) {
        throw new IllegalArgumentException(
            "layer " + k + " is outside " + LAYER_INTERMEDIATE_SIZES + " " + widths);
      }
      out.add(widths.get(k).intValue());
      max = Math.max(max, widths.get(k).intValue());
    }
    config.set(LAYER_INTERMEDIATE_SIZES, out);
    config.put("intermediate_size", max);
  }

  private int[] layerWidths(JsonNode n) {
    if (n == null || n.isNull()) {
      return null;
    }
    if (family != Family.LLAMA && family != Family.QWEN3) {
      throw new UnsupportedModelException(
          "not supported yet: "
              + LAYER_INTERMEDIATE_SIZES
              + " on "
              + modelType
              + " (only Llama / Mistral / Qwen2 / Qwen3 MLPs)");
    }
    if (moeficationExperts > 0 || !lowRank.isEmpty()) {
      throw new UnsupportedModelException(
          "not supported yet: "
              + LAYER_INTERMEDIATE_SIZES
              + " with "
              + (moeficationExperts > 0 ? MOEFICATION : LOW_RANK));
    }
    if (!n.isArray() || n.size() != numLayers) {
      throw new IllegalArgumentException(
          "config.json: expected "
              + LAYER_INTERMEDIATE_SIZES
              + " to be a list of "
              + numLayers
              + " widths (one per layer), found "
              + n);
    }
    int[] w = new int[numLayers];
    int max = 0;
    for (int i = 0; i < numLayers; i++) {
      JsonNode v = n.get(i);
      if (!v.canConvertToInt() || v.intValue() < 1) {
        throw new IllegalArgumentException(
            "config.json: expected positive integers in "
                + LAYER_INTERMEDIATE_SIZES
                + ", found "
                + v
                + " at layer "
                + i);
      }
      w[i] = v.intValue();
      max = Math.max(max, w[i]);
    }
    if (max != intermediateSize) {
      throw new IllegalArgumentException(
          "config.json: intermediate_size "
              + intermediateSize
              + " must be the largest of "
              + LAYER_INTERMEDIATE_SIZES
              + " ("
              + max
              + ")");
    }
    return w;
  }

  public int numLayers() {
    return numLayers;
  }

  public int numHeads() {
    return numHeads;
  }

  public int numKvHeads() {
    return numKvHeads;
  }

  public int headDim() {
    return headDim;
  }

  /** RMSNorm epsilon (Llama family) or LayerNorm epsilon (GPT-2). */
  public double normEps() {
    return normEps;
  }

  public double ropeTheta() {
    return ropeTheta;
  }

  /** RoPE theta and scaling (Llama family); null for GPT-2's learned positions. */
  public RopeScaling ropeScaling() {
    return rope;
  }

  /**
   * The most positions one sequence may cover: max_position_embeddings, or more when the RoPE
   * scaling stretches the context (see {@link RopeScaling#positionLimit()}).
   */
  public int positionLimit() {
    return rope == null ? maxPositions : rope.positionLimit();
  }

  public int maxPositions() {
    return maxPositions;
  }

  /** Whether q, k and v projections have biases. */
  public boolean qkvBias() {
    return qkvBias;
  }

  /** Whether the attention output projection has a bias. */
  public boolean outputBias() {
    return outputBias;
  }

  public boolean mlpBias() {
    return mlpBias;
  }

  /** Whether the LM head reuses the token embedding matrix. */
  public boolean tieWordEmbeddings() {
    return tieWordEmbeddings;
  }

  /** Mistral-style sliding attention window, 0 when the model has none. */
  public int slidingWindow() {
    return slidingWindow;
  }

  /**
   * The window layer {@code layer} attends through (a position sees itself and the {@code W - 1}
   * before it), 0 for full causal attention.
   */
  public int slidingWindow(int layer) {
    return windowedLayers[layer] ? slidingWindow : 0;
  }

  /** Whether q and k get a per-head RMSNorm ({@code q_norm}, {@code k_norm}) before RoPE. */
  public boolean qkNorm() {
    return family == Family.QWEN3 || family == Family.QWEN3_MOE;
  }

  /** Whether q/k/v and gate/up are fused into {@code qkv_proj} and {@code gate_up_proj}. */
  public boolean fusedProjections() {
    return family == Family.PHI3;
  }

  /**
   * Whether the model has sparse mixture-of-experts layers (Mixtral, Qwen2-MoE, Qwen3-MoE); which
   * layers are sparse says {@link #sparseLayer}.
   */
  public boolean moe() {
    return family == Family.MIXTRAL || family == Family.QWEN2_MOE || family == Family.QWEN3_MOE;
  }

  /**
   * Whether layer {@code i}'s MLP is a sparse mixture of experts; otherwise it is a dense SiLU MLP
   * of {@link #intermediateSize}. Every layer of Mixtral, none of a dense family.
   */
  public boolean sparseLayer(int i) {
    return sparseLayers[i];
  }

  /**
   * Width of one expert's MLP ({@code moe_intermediate_size}; Mixtral's {@code intermediate_size}),
   * 0 without experts.
   */
  public int expertIntermediateSize() {
    return expertIntermediateSize;
  }

  /**
   * Width of the shared expert every token of a sparse layer also runs through ({@code
   * shared_expert_intermediate_size}, Qwen2-MoE), 0 for none.
   */
  public int sharedExpertIntermediateSize() {
    return sharedExpertIntermediateSize;
  }

  /**
   * Whether the top-k routing weights are renormalised to sum 1 (Mixtral always; Qwen MoE per
   * {@code norm_topk_prob}); otherwise they stay the softmax over all experts.
   */
  public boolean normTopkProb() {
    return normTopkProb;
  }

  /** Experts per MoE layer ({@code num_local_experts} / {@code num_experts}), 0 for a dense MLP. */
  public int numExperts() {
    return numExperts;
  }

  /** Experts each token is routed to ({@code num_experts_per_tok}), 0 for a dense MLP. */
  public int expertsPerToken() {
    return expertsPerToken;
  }

  /**
   * Experts of a MoEfied dense MLP ({@code compactor_moefication.num_experts}), 0 for none. Such a
   * model is an ordinary dense checkpoint whose MLP neurons are ordered so that expert {@code e}
   * owns the contiguous slice {@code [e*m, (e+1)*m)}, {@code m = intermediate_size / E}, plus a
   * router {@code mlp.moefication_router.weight} [E, hidden] per layer; the forward runs only the
   * top-k slices of each token and sums their outputs unweighted. Hugging Face ignores the field
   * and the router, and runs the dense MLP.
   */
  public int moeficationExperts() {
    return moeficationExperts;
  }

  /** Expert slices each token runs through in a MoEfied model; 0 for none. */
  public int moeficationTopK() {
    return moeficationTopK;
  }

  /** Whether the dense MLP runs only its routed expert slices (see {@link #moeficationExperts}). */
  public boolean moefied() {
    return moeficationExperts > 0;
  }

  /**
   * Ranks of the low-rank factorized linears by full name ({@value #LOW_RANK}); empty for a dense
   * model. A factorized linear {@code X} is stored as {@code X.v.weight} {@code [r, in]} and {@code
   * X.u.weight} {@code [out, r]} instead of {@code X.weight}, and computes {@code (x v^T) u^T}.
   */
  public java.util.Map<String, Integer> lowRank() {
    return lowRank;
  }

  /** The rank of linear {@code fullName} (e.g. {@code model.layers.0.mlp.up_proj}), 0 if dense. */
  public int lowRank(String fullName) {
    return lowRank.getOrDefault(fullName, 0);
  }

  /** Whether any linear is stored low-rank factorized. */
  public boolean factorized() {
    return !lowRank.isEmpty();
  }

  /**
   * For stages that read linears as dense {@code X.weight} (quantizers, pruners, GGUF export,
   * MoEfication): throws {@link #LOW_RANK_REFUSAL} for a factorized model.
   */
  public void requireDenseLinears() {
    if (factorized()) {
      throw new UnsupportedOperationException(LOW_RANK_REFUSAL);
    }
  }

  /**
   * Number of parameters (tied head counted once; every expert, shared ones too, counted; a MoEfied
   * model's routers counted).
   */
  public long parameterCount() {
    if (factorized()) {
      long n = 0;
      for (var spec : dev.compactor.core.model.internal.Layout.globals(this, "")) {
        n += numel(spec.shape());
      }
      for (int i = 0; i < numLayers; i++) {
        for (var spec : dev.compactor.core.model.internal.Layout.layer(this, i)) {
          n += numel(spec.shape());
        }
      }
      return n;
    }
    long h = hiddenSize;
    if (family == Family.GPT2) {
      long perLayer =
          4 * h
              + (h * 3 * h + 3 * h)
              + (h * h + h)
              + 2 * (h * intermediateSize)
              + intermediateSize
              + h;
      return perLayer * numLayers + (long) vocabSize * h + (long) maxPositions * h + 2 * h;
    }
    long q = (long) numHeads * headDim;
    long kv = (long) numKvHeads * headDim;
    long attention =
        2 * h
            + (qkNorm() ? 2L * headDim : 0)
            + h * (q + 2 * kv)
            + q * h
            + (qkvBias ? q + 2 * kv : 0)
            + (outputBias ? h : 0);
    long mlpBiasExtra = mlpBias ? h : 0;
    long sparse =
        (long) numExperts * 3 * h * expertIntermediateSize
            + (long) numExperts * h
            + (sharedExpertIntermediateSize > 0 ? 3 * h * sharedExpertIntermediateSize + h : 0);
    long layers = 0;
    for (int i = 0; i < numLayers; i++) {
      long inter = intermediateSize(i);
      long dense = 3 * h * inter + (mlpBias ? 2L * inter + mlpBiasExtra : 0);
      layers += attention + (sparseLayers[i] ? sparse : dense) + (long) moeficationExperts * h;
    }
    return layers + (long) vocabSize * h * (tieWordEmbeddings ? 1 : 2) + h;
  }

  @Override
  public String toString() {
    return modelType
        + "(layers="
        + numLayers
        + ", hidden="
        + hiddenSize
        + ", heads="
        + numHeads
        + "/"
        + numKvHeads
        + ", vocab="
        + vocabSize
        + ")";
  }
}
