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
 * {@code gate_up_proj}), Mixtral ({@code mixtral}: Mistral attention, each MLP a sparse mixture of
 * SiLU experts behind a top-k router) and GPT-2 (learned positions, LayerNorm, gelu_new). Anything
 * else is refused with {@link UnsupportedModelException} rather than run wrongly.
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
  private final int moeficationExperts;
  private final int moeficationTopK;

  /** The config field of a MoEfied dense model (see {@link #moeficationExperts()}). */
  public static final String MOEFICATION = "compactor_moefication";

  private ModelConfig(ObjectNode raw) {
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
      case "llama", "mistral", "qwen2", "qwen3", "phi3", "mixtral" -> {
        family =
            switch (modelType) {
              case "qwen3" -> Family.QWEN3;
              case "phi3" -> Family.PHI3;
              case "mixtral" -> Family.MIXTRAL;
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
        boolean attentionBias = !phi3 && !mixtral && bool(raw, "attention_bias", false);
        qkvBias = modelType.equals("qwen2") || attentionBias;
        outputBias = !modelType.equals("qwen2") && attentionBias;
        double partialRotary = dbl(raw, "partial_rotary_factor", 1.0);
        if (partialRotary != 1.0) {
          throw new UnsupportedModelException(
              "not supported yet: partial_rotary_factor " + partialRotary + " (" + modelType + ")");
        }
        mlpBias = !phi3 && !mixtral && bool(raw, "mlp_bias", false);
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
          rope = RopeScaling.from(raw, headDim);
        }
        ropeTheta = rope.theta();
        boolean qwen = modelType.startsWith("qwen");
        boolean windowed = !qwen || bool(raw, "use_sliding_window", false);
        slidingWindow = windowed ? opt(raw, "sliding_window", 0) : 0;
        windowedLayers = windowedLayers(raw, qwen, slidingWindow, numLayers);
        numExperts = mixtral ? opt(raw, "num_local_experts", 8) : 0;
        expertsPerToken = mixtral ? opt(raw, "num_experts_per_tok", 2) : 0;
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
    validate();
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
    if (family == Family.MIXTRAL) {
      positive("num_local_experts", numExperts);
      if (expertsPerToken < 1 || expertsPerToken > numExperts) {
        throw new IllegalArgumentException(
            "config.json: expected num_experts_per_tok between 1 and num_local_experts "
                + numExperts
                + ", found "
                + expertsPerToken);
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

  public int intermediateSize() {
    return intermediateSize;
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
    return family == Family.QWEN3;
  }

  /** Whether q/k/v and gate/up are fused into {@code qkv_proj} and {@code gate_up_proj}. */
  public boolean fusedProjections() {
    return family == Family.PHI3;
  }

  /** Whether each layer's MLP is a sparse mixture of experts (Mixtral). */
  public boolean moe() {
    return family == Family.MIXTRAL;
  }

  /** Experts per MoE layer ({@code num_local_experts}), 0 for a dense MLP. */
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

  /** Number of parameters (tied head counted once; every expert counted). */
  public long parameterCount() {
    long h = hiddenSize;
    long perLayer;
    long rest;
    if (family == Family.GPT2) {
      perLayer =
          4 * h
              + (h * 3 * h + 3 * h)
              + (h * h + h)
              + 2 * (h * intermediateSize)
              + intermediateSize
              + h;
      rest = (long) vocabSize * h + (long) maxPositions * h + 2 * h;
    } else {
      long q = (long) numHeads * headDim;
      long kv = (long) numKvHeads * headDim;
      perLayer =
          2 * h
              + (family == Family.QWEN3 ? 2L * headDim : 0)
              + h * (q + 2 * kv)
              + q * h
              + (moe()
                  ? (long) numExperts * 3 * h * intermediateSize + (long) numExperts * h
                  : 3 * h * intermediateSize)
              + (qkvBias ? q + 2 * kv : 0)
              + (outputBias ? h : 0)
              + (mlpBias ? 2L * intermediateSize + h : 0)
              + (long) moeficationExperts * h;
      rest = (long) vocabSize * h * (tieWordEmbeddings ? 1 : 2) + h;
    }
    return perLayer * numLayers + rest;
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
