package dev.compactor.core.quant.table;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufExperts;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.GgufValue;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Turns a llama (dense or Mixtral), qwen2, qwen3, phi3, qwen2moe or qwen3moe GGUF file written by
 * {@link dev.compactor.core.gguf.LlamaGgufExporter} back into a Hugging Face directory of fp32
 * safetensors: every tensor is dequantized with ggml's own block decoders and, for the llama arch
 * only, the q/k rows get the inverse of convert_hf_to_gguf.py's RoPE permutation (qwen2/qwen3/phi3
 * keep HF's row order). A stacked expert tensor ({@code ffn_*_exps}, see {@link GgufExperts}) is
 * cut back into one {@code [out, in]} tensor per expert; qwen2moe's shared expert and its {@code
 * [1, hidden]} gate come back as they are. The result computes exactly what llama.cpp computes with
 * the GGUF's weights, so the same perplexity and divergence evaluators as for every other format
 * measure GGUF quality without llama.cpp.
 *
 * <p>The hyper-parameters come from the original model's config.json ({@code templateDir}, also the
 * source of the tokenizer files); they are checked against the GGUF's {@code general.architecture}
 * and {@code <arch>.*} metadata.
 */
public final class GgufToHf {

  /**
   * What was converted.
   *
   * @param tensorTypes GGUF type of each tensor, by GGUF name
   * @param ggufBytes size of the GGUF file
   */
  public record Result(Map<String, GgmlType> tensorTypes, long ggufBytes) {}

  private GgufToHf() {}

  /** Writes {@code outDir} (absent or empty) from {@code gguf} and the original's config. */
  public static Result convert(Path gguf, Path templateDir, Path outDir) throws IOException {
    ModelDirectory template = ModelDirectory.open(templateDir);
    ModelConfig config = ModelConfig.read(templateDir);
    Map<String, GgmlType> types = new TreeMap<>();
    String arch = ggufArch(config);
    try (GgufReader r = GgufReader.open(gguf)) {
      String found = r.require("general.architecture").value().toString();
      if (!found.equals(arch)) {
        throw new CheckpointFormatException(
            "GGUF general.architecture: expected "
                + arch
                + " (the original is "
                + config.modelType()
                + "), found "
                + found);
      }
      check(r, arch + ".block_count", config.numLayers());
      check(r, arch + ".embedding_length", config.hiddenSize());
      check(r, arch + ".attention.head_count", config.numHeads());
      check(r, arch + ".attention.head_count_kv", config.numKvHeads());
      if (config.moe()) {
        check(r, arch + ".expert_count", config.numExperts());
        check(r, arch + ".expert_used_count", config.expertsPerToken());
        if (arch.endsWith("moe")) {
          check(r, arch + ".expert_feed_forward_length", config.expertIntermediateSize());
        }
        if (Layout.hasSharedExpert(config)) {
          check(
              r,
              arch + ".expert_shared_feed_forward_length",
              config.sharedExpertIntermediateSize());
        }
      } else if (r.metadata().containsKey(arch + ".expert_count")) {
        throw new CheckpointFormatException(
            "GGUF "
                + arch
                + ".expert_count: the original "
                + config.modelType()
                + " has no experts, the file has "
                + r.metadata().get(arch + ".expert_count").value());
      }
      try (SafetensorsWriter out =
          new SafetensorsWriter(outDir, Map.of("compactor.from_gguf", gguf.getFileName() + ""))) {
        for (Map.Entry<String, List<String>> e : names(config).entrySet()) {
          String ggufName = e.getKey();
          if (ggufName.equals("output.weight") && config.tieWordEmbeddings()) {
            continue;
          }
          GgufTensorInfo info = r.tensor(ggufName);
          float[] v = r.readTensorFloats(ggufName);
          long[] shape = info.shape();
          List<String> hf = e.getValue();
          if (hf.size() > 1 || shape.length == 3) {
            writeExperts(out, ggufName, shape, v, hf);
          } else {
            int heads = arch.equals("llama") ? permuteHeads(config, ggufName) : 0;
            if (heads > 0) {
              v = unpermuteForRope(v, (int) shape[0], (int) shape[1], heads);
            }
            out.write(hf.get(0), DType.F32, shape, v);
          }
          types.put(ggufName, info.type());
        }
        if (arch.equals("llama") && !config.moe()) {
          llamaBiases(r, config, out, types);
        }
      }
    }
    template.copyAuxiliaryFilesTo(outDir);
    ObjectNode json = (ObjectNode) template.configJson().deepCopy();
    json.put("torch_dtype", "float32");
    json.putObject("compactor_from_gguf")
        .put("file", gguf.getFileName().toString())
        .put("sha256", ModelDirectory.sha256(gguf));
    ModelDirectory.writeConfig(outDir, json);
    return new Result(types, java.nio.file.Files.size(gguf));
  }

  /**
   * The llama graph's optional biases: those in the file come back as they are; those the config
   * implies but the exporter left out (zero q/k/v biases) come back as zeros.
   */
  private static void llamaBiases(
      GgufReader r, ModelConfig config, SafetensorsWriter out, Map<String, GgmlType> types)
      throws IOException {
    java.util.Set<String> have = new java.util.HashSet<>();
    for (GgufTensorInfo t : r.tensors()) {
      have.add(t.name());
    }
    Map<String, String> gguf =
        Map.of(
            "self_attn.q_proj.bias", "attn_q.bias",
            "self_attn.k_proj.bias", "attn_k.bias",
            "self_attn.v_proj.bias", "attn_v.bias",
            "self_attn.o_proj.bias", "attn_output.bias",
            "mlp.gate_proj.bias", "ffn_gate.bias",
            "mlp.up_proj.bias", "ffn_up.bias",
            "mlp.down_proj.bias", "ffn_down.bias");
    for (int l = 0; l < config.numLayers(); l++) {
      for (Layout.Spec s : Layout.layer(config, l)) {
        String g = gguf.get(s.name());
        if (g == null) {
          continue;
        }
        String ggufName = "blk." + l + "." + g;
        String hf = "model.layers." + l + "." + s.name();
        if (have.contains(ggufName)) {
          out.write(hf, DType.F32, s.shape(), r.readTensorFloats(ggufName));
          types.put(ggufName, r.tensor(ggufName).type());
        } else if (s.name().startsWith("self_attn.") && !s.name().startsWith("self_attn.o_proj")) {
          out.write(hf, DType.F32, s.shape(), new float[Math.toIntExact(s.shape()[0])]);
        } else {
          throw new CheckpointFormatException(
              "GGUF " + ggufName + ": the original has " + hf + ", the file has no such tensor");
        }
      }
    }
  }

  /** Cuts a stacked {@code [E, out, in]} tensor into the E experts' {@code [out, in]} tensors. */
  private static void writeExperts(
      SafetensorsWriter out, String ggufName, long[] shape, float[] v, List<String> hf)
      throws IOException {
    if (shape.length != 3 || shape[0] != hf.size()) {
      throw new CheckpointFormatException(
          "GGUF tensor "
              + ggufName
              + ": expected "
              + hf.size()
              + " stacked experts [E, out, in], found shape "
              + java.util.Arrays.toString(shape));
    }
    int per = Math.toIntExact(shape[1] * shape[2]);
    for (int e = 0; e < hf.size(); e++) {
      float[] one = java.util.Arrays.copyOfRange(v, e * per, (e + 1) * per);
      out.write(hf.get(e), DType.F32, new long[] {shape[1], shape[2]}, one);
    }
  }

  /**
   * The inverse of {@link dev.compactor.core.gguf.LlamaGgufExporter#permuteForRope}: row {@code
   * h*hd + 2*i + s} moves back to {@code h*hd + s*hd/2 + i}.
   */
  public static float[] unpermuteForRope(float[] w, int rows, int cols, int nHead) {
    if (rows % (2 * nHead) != 0 || (long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "cannot un-permute " + rows + "x" + cols + " into " + nHead + " heads of pairs");
    }
    int half = rows / nHead / 2;
    float[] out = new float[w.length];
    for (int h = 0; h < nHead; h++) {
      for (int s = 0; s < 2; s++) {
        for (int i = 0; i < half; i++) {
          int permuted = h * 2 * half + 2 * i + s;
          int original = h * 2 * half + s * half + i;
          System.arraycopy(w, permuted * cols, out, original * cols, cols);
        }
      }
    }
    return out;
  }

  /** llama.cpp's architecture for the original's model_type, as the exporter writes it. */
  static String ggufArch(ModelConfig c) {
    return switch (c.modelType()) {
      case "qwen2", "qwen3", "phi3" -> c.modelType();
      case "qwen2_moe" -> "qwen2moe";
      case "qwen3_moe" -> "qwen3moe";
      default -> "llama";
    };
  }

  /**
   * GGUF tensor name to Hugging Face names (one, or the experts in order for a stacked tensor), in
   * the exporter's order.
   */
  static Map<String, List<String>> names(ModelConfig c) {
    Map<String, List<String>> m = new LinkedHashMap<>();
    m.put("token_embd.weight", List.of("model.embed_tokens.weight"));
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "model.layers." + l + ".";
      String b = "blk." + l + ".";
      m.put(b + "attn_norm.weight", List.of(p + "input_layernorm.weight"));
      boolean phi3 = ggufArch(c).equals("phi3");
      if (phi3) {
        m.put(b + "attn_qkv.weight", List.of(p + "self_attn.qkv_proj.weight"));
      } else {
        m.put(b + "attn_q.weight", List.of(p + "self_attn.q_proj.weight"));
        m.put(b + "attn_k.weight", List.of(p + "self_attn.k_proj.weight"));
        m.put(b + "attn_v.weight", List.of(p + "self_attn.v_proj.weight"));
      }
      switch (ggufArch(c)) {
        case "qwen2", "qwen2moe" -> {
          m.put(b + "attn_q.bias", List.of(p + "self_attn.q_proj.bias"));
          m.put(b + "attn_k.bias", List.of(p + "self_attn.k_proj.bias"));
          m.put(b + "attn_v.bias", List.of(p + "self_attn.v_proj.bias"));
        }
        case "qwen3", "qwen3moe" -> {
          m.put(b + "attn_q_norm.weight", List.of(p + "self_attn.q_norm.weight"));
          m.put(b + "attn_k_norm.weight", List.of(p + "self_attn.k_norm.weight"));
        }
        default -> {}
      }
      m.put(b + "attn_output.weight", List.of(p + "self_attn.o_proj.weight"));
      m.put(b + "ffn_norm.weight", List.of(p + "post_attention_layernorm.weight"));
      if (c.moe()) {
        for (GgufExperts.Tensor t : GgufExperts.layer(c)) {
          m.put(b + t.gguf(), t.hf().stream().map(n -> p + n).toList());
        }
        continue;
      }
      if (phi3) {
        m.put(b + "ffn_up.weight", List.of(p + "mlp.gate_up_proj.weight"));
      } else {
        m.put(b + "ffn_gate.weight", List.of(p + "mlp.gate_proj.weight"));
        m.put(b + "ffn_up.weight", List.of(p + "mlp.up_proj.weight"));
      }
      m.put(b + "ffn_down.weight", List.of(p + "mlp.down_proj.weight"));
    }
    m.put("output_norm.weight", List.of("model.norm.weight"));
    m.put("output.weight", List.of("lm_head.weight"));
    return m;
  }

  /** The GGUF name of a decoder linear, e.g. {@code blk.0.attn_q.weight} for q_proj of layer 0. */
  public static String ggufLinearName(int layer, String hfLinear) {
    String b = "blk." + layer + ".";
    return switch (hfLinear) {
      case "self_attn.q_proj" -> b + "attn_q.weight";
      case "self_attn.k_proj" -> b + "attn_k.weight";
      case "self_attn.v_proj" -> b + "attn_v.weight";
      case "self_attn.o_proj" -> b + "attn_output.weight";
      case "mlp.gate_proj" -> b + "ffn_gate.weight";
      case "mlp.up_proj" -> b + "ffn_up.weight";
      case "mlp.down_proj" -> b + "ffn_down.weight";
      default -> throw new IllegalArgumentException("not a Llama decoder linear: " + hfLinear);
    };
  }

  private static int permuteHeads(ModelConfig c, String ggufName) {
    if (ggufName.endsWith(".attn_q.weight")) {
      return c.numHeads();
    }
    if (ggufName.endsWith(".attn_k.weight")) {
      return c.numKvHeads();
    }
    return 0;
  }

  private static void check(GgufReader r, String key, int expected) throws IOException {
    GgufValue v = r.require(key);
    long found = ((Number) v.value()).longValue();
    if (found != expected) {
      throw new CheckpointFormatException(
          "GGUF "
              + key
              + ": expected "
              + expected
              + " (from the original config.json), found "
              + found);
    }
  }
}
