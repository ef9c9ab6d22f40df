package dev.compactor.core.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A LoRA adapter as a Hugging Face PEFT adapter directory, the layout {@code
 * PeftModel.from_pretrained} and vLLM's LoRA loader read:
 *
 * <pre>
 * adapter_config.json        { "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8,
 *                              "lora_alpha": 16, "lora_dropout": 0.0, "bias": "none",
 *                              "target_modules": ["q_proj", ...], "fan_in_fan_out": false,
 *                              "base_model_name_or_path": "...", "inference_mode": true, ... }
 * adapter_model.safetensors  base_model.model.&lt;module&gt;.lora_A.weight  [r, in]
 *                            base_model.model.&lt;module&gt;.lora_B.weight  [out, r]
 *                            (module: the linear's name in the causal LM, e.g.
 *                             model.layers.0.self_attn.q_proj; stored F32)
 * compactor.json             { "lora_delta": "plain" | "masked-to-base-nonzeros", ... }
 * </pre>
 *
 * Sources checked: PEFT's checkpoint format guide (huggingface/peft,
 * docs/source/developer_guides/checkpoint.md: keys always start with {@code base_model.model.},
 * then the module path, then {@code lora_A.weight}/{@code lora_B.weight}, the adapter name
 * stripped) and vLLM's {@code parse_fine_tuned_lora_name} (vllm-project/vllm, vllm/lora/utils.py:
 * strips {@code base_model.model.}, accepts {@code .lora_A.weight}/{@code .lora_B.weight}).
 *
 * <p>A masked adapter (see {@link LoraAdapter}) is written in the same layout, because its merged
 * form is exact, but PEFT and vLLM would apply its delta unmasked, also over the base's pruned
 * zeros: {@code compactor.json} and the safetensors metadata say {@code masked-to-base-nonzeros},
 * and this reader re-applies the mask. Reading refuses anything it cannot apply exactly: another
 * PEFT type, DoRA, per-module rank or alpha patterns, transposed (fan_in_fan_out) weights, biases,
 * modules_to_save, keys or shapes that do not match the base, non-finite values, and pickle ({@code
 * adapter_model.bin}), which is never opened.
 */
public final class PeftAdapterFiles {

  public static final String CONFIG = "adapter_config.json";
  public static final String WEIGHTS = "adapter_model.safetensors";
  public static final String PROVENANCE = "compactor.json";
  static final String KEY_PREFIX = "base_model.model.";
  static final String DELTA_KEY = "lora_delta";
  static final String PLAIN = "plain";
  static final String MASKED = "masked-to-base-nonzeros";

  private static final ObjectMapper JSON = new ObjectMapper();

  private PeftAdapterFiles() {}

  /**
   * Writes {@code adapter} into {@code dir} (absent or empty). {@code provenance} fields are added
   * to {@code compactor.json}.
   */
  public static void write(
      LoraAdapter adapter, Path dir, String baseModelNameOrPath, ObjectNode provenance)
      throws IOException {
    if (Files.exists(dir)) {
      try (var entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("adapter directory " + dir + " must be absent or empty");
        }
      }
    }
    Files.createDirectories(dir);
    ObjectNode c = JSON.createObjectNode();
    c.put("peft_type", "LORA");
    c.put("task_type", "CAUSAL_LM");
    c.put("r", adapter.rank());
    if (adapter.alpha() == Math.rint(adapter.alpha()) && adapter.alpha() < 1 << 24) {
      c.put("lora_alpha", (int) adapter.alpha());
    } else {
      c.put("lora_alpha", adapter.alpha());
    }
    c.put("lora_dropout", 0.0);
    c.put("bias", "none");
    ArrayNode targets = c.putArray("target_modules");
    adapter.targetModules().forEach(targets::add);
    c.put("fan_in_fan_out", false);
    c.put("base_model_name_or_path", baseModelNameOrPath);
    c.put("inference_mode", true);
    c.put("init_lora_weights", true);
    c.put("use_rslora", false);
    c.put("use_dora", false);
    c.putNull("modules_to_save");
    c.putNull("layers_to_transform");
    c.putNull("revision");
    Files.writeString(
        dir.resolve(CONFIG), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c));

    String delta = adapter.masked() ? MASKED : PLAIN;
    Path tmp = dir.resolve(".weights-tmp");
    Map<String, String> metadata = Map.of("compactor.lora.delta", delta);
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, metadata)) {
      Map<String, float[]> values = adapter.values();
      for (LoraAdapter.Target t : adapter.targets()) {
        w.write(t.keyA(), DType.F32, new long[] {adapter.rank(), t.in()}, values.get(t.keyA()));
        w.write(t.keyB(), DType.F32, new long[] {t.out(), adapter.rank()}, values.get(t.keyB()));
      }
    }
    Files.move(
        tmp.resolve("model.safetensors"), dir.resolve(WEIGHTS), StandardCopyOption.ATOMIC_MOVE);
    Files.delete(tmp);

    ObjectNode p = JSON.createObjectNode();
    p.put(DELTA_KEY, delta);
    if (adapter.masked()) {
      p.put(
          "note",
          "trained with the delta masked to the base's non-zero weights: exact merged (the merged"
              + " model keeps the base's zeros) or loaded by compactor; PEFT and vLLM apply it"
              + " unmasked, which also changes the pruned weights");
    }
    if (provenance != null) {
      p.setAll(provenance);
    }
    Files.writeString(
        dir.resolve(PROVENANCE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(p));
  }

  /**
   * Reads the adapter in {@code dir} for {@code base}, checking every field and tensor against the
   * base (see the class comment for what is refused).
   */
  public static LoraAdapter read(Path dir, Transformer base) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException("expected a PEFT adapter directory at " + dir + ", found none");
    }
    Path configFile = dir.resolve(CONFIG);
    if (!Files.isRegularFile(configFile, LinkOption.NOFOLLOW_LINKS)) {
      throw new CheckpointFormatException(dir + ": expected " + CONFIG + " (a regular file)");
    }
    JsonNode c = ModelDirectory.readJsonObject(configFile);
    String where = configFile.toString();
    String type = c.path("peft_type").asText("");
    if (!type.equals("LORA")) {
      throw new UnsupportedOperationException("not supported: peft_type=" + c.path("peft_type"));
    }
    JsonNode r = c.path("r");
    if (!r.canConvertToInt() || !r.isIntegralNumber() || r.asInt() < 1 || r.asInt() > 65536) {
      throw new CheckpointFormatException(where + ": expected r a positive integer, found " + r);
    }
    int rank = r.asInt();
    JsonNode alphaNode = c.path("lora_alpha");
    if (!alphaNode.isNumber()
        || !(alphaNode.asDouble() > 0)
        || !Double.isFinite(alphaNode.asDouble())) {
      throw new CheckpointFormatException(
          where + ": expected lora_alpha a positive number, found " + alphaNode);
    }
    float alpha = (float) alphaNode.asDouble();
    refuseIf(c, "fan_in_fan_out", true);
    refuseIf(c, "use_dora", true);
    refuseIf(c, "lora_bias", true);
    if (c.path("use_rslora").asBoolean(false)) {
      throw new UnsupportedOperationException("not supported yet: use_rslora=true");
    }
    String bias = c.path("bias").asText("none");
    if (!bias.equals("none")) {
      throw new UnsupportedOperationException("not supported yet: bias=" + bias);
    }
    for (String f : List.of("rank_pattern", "alpha_pattern")) {
      if (c.path(f).size() > 0) {
        throw new UnsupportedOperationException("not supported yet: " + f + "=" + c.get(f));
      }
    }
    for (String f :
        List.of(
            "modules_to_save",
            "layers_to_transform",
            "layers_pattern",
            "exclude_modules",
            "trainable_token_indices")) {
      if (c.hasNonNull(f)) {
        throw new UnsupportedOperationException("not supported yet: " + f + "=" + c.get(f));
      }
    }
    JsonNode tm = c.path("target_modules");
    if (tm.isTextual()) {
      throw new UnsupportedOperationException(
          "not supported yet: target_modules as a regular expression (" + tm + ")");
    }
    if (!tm.isArray() || tm.isEmpty()) {
      throw new CheckpointFormatException(
          where + ": expected target_modules a non-empty list of module names, found " + tm);
    }
    List<String> modules = new ArrayList<>();
    for (JsonNode m : tm) {
      if (!m.isTextual() || !m.asText().matches("[A-Za-z0-9_]+")) {
        throw new UnsupportedOperationException(
            "not supported yet: target_modules entry " + m + " (expected a plain module name)");
      }
      modules.add(m.asText());
    }
    boolean masked = false;
    Path provenance = dir.resolve(PROVENANCE);
    if (Files.exists(provenance, LinkOption.NOFOLLOW_LINKS)) {
      JsonNode p = ModelDirectory.readJsonObject(provenance);
      String delta = p.path(DELTA_KEY).asText(PLAIN);
      if (!delta.equals(PLAIN) && !delta.equals(MASKED)) {
        throw new CheckpointFormatException(
            provenance
                + ": expected "
                + DELTA_KEY
                + " "
                + PLAIN
                + " or "
                + MASKED
                + ", found "
                + delta);
      }
      masked = delta.equals(MASKED);
    }

    Path weights = dir.resolve(WEIGHTS);
    if (!Files.isRegularFile(weights, LinkOption.NOFOLLOW_LINKS)) {
      if (Files.exists(dir.resolve("adapter_model.bin"))) {
        throw new CheckpointFormatException(
            dir
                + ": only adapter_model.bin (a pickle) is there; pickle files are never opened"
                + " (they can run code). Save the adapter with safe_serialization=True to get "
                + WEIGHTS);
      }
      throw new CheckpointFormatException(dir + ": expected " + WEIGHTS + " (a regular file)");
    }
    List<LoraAdapter.Target> targets;
    try {
      targets = LoraAdapter.targets(base, modules);
    } catch (IllegalArgumentException e) {
      throw new CheckpointFormatException(where + ": " + e.getMessage(), e);
    }
    Map<String, LoraAdapter.Target> byKey = new LinkedHashMap<>();
    for (LoraAdapter.Target t : targets) {
      byKey.put(t.keyA(), t);
      byKey.put(t.keyB(), t);
    }
    Map<String, float[]> values = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(weights)) {
      Set<String> missing = new LinkedHashSet<>(byKey.keySet());
      for (TensorInfo info : f.infos()) {
        String name = info.name();
        LoraAdapter.Target t = byKey.get(name);
        if (t == null) {
          throw new CheckpointFormatException(
              weights
                  + ": tensor "
                  + name
                  + " is not the lora_A/lora_B weight of a "
                  + modules
                  + " linear of the base model");
        }
        boolean isA = name.equals(t.keyA());
        long[] expected = isA ? new long[] {rank, t.in()} : new long[] {t.out(), rank};
        if (!Arrays.equals(expected, info.shape())) {
          throw new CheckpointFormatException(
              weights
                  + ": "
                  + name
                  + ": expected shape "
                  + Arrays.toString(expected)
                  + " (r = "
                  + rank
                  + ", base linear ["
                  + t.out()
                  + ", "
                  + t.in()
                  + "]), found "
                  + Arrays.toString(info.shape()));
        }
        if (info.dtype() != DType.F32 && info.dtype() != DType.F16 && info.dtype() != DType.BF16) {
          throw new CheckpointFormatException(
              weights + ": " + name + ": expected F32, F16 or BF16, found " + info.dtype());
        }
        float[] v = f.readFloats(name);
        for (float x : v) {
          if (!Float.isFinite(x)) {
            throw new CheckpointFormatException(weights + ": " + name + " holds " + x);
          }
        }
        values.put(name, v);
        missing.remove(name);
      }
      if (!missing.isEmpty()) {
        throw new CheckpointFormatException(
            weights
                + ": "
                + missing.size()
                + " adapter tensors the target_modules imply are missing (first: "
                + missing.iterator().next()
                + ")");
      }
    }
    return LoraAdapter.of(base, rank, alpha, masked, targets, values);
  }

  private static void refuseIf(JsonNode c, String field, boolean value) {
    if (c.path(field).isBoolean() && c.path(field).asBoolean() == value) {
      throw new UnsupportedOperationException("not supported: " + field + "=" + value);
    }
  }
}
