package dev.compactor.core.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on a small random Llama: a fresh adapter changes nothing, a merged adapter computes what
 * base + adapter computed, a masked merge keeps every zero of a pruned base, the PEFT directory
 * round-trips, and broken or mismatched adapter directories are refused.
 */
class LoraAdapterTest {

  private static final LoraSpec SPEC = new LoraSpec(4, 8f, LoraSpec.DEFAULT_TARGETS, 9L);
  private static final int[] TOKENS = {1, 5, 9, 2, 7, 7, 3, 0, 11, 40, 2, 66};

  private static Transformer model(long seed) {
    return Transformer.randomInit(TestModels.tinyLlama(2), seed, Device.cpu());
  }

  private static float[] logits(Transformer base, LoraAdapter adapter) {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray t = m.create(TOKENS, new Shape(2, 6));
      return adapter == null
          ? base.logits(m, t).toFloatArray()
          : base.logits(m, t, adapter.transform()).toFloatArray();
    }
  }

  /** B (and A) set to seeded random values so the delta is far from zero. */
  private static void randomise(LoraAdapter adapter, long seed) {
    Random r = new Random(seed);
    for (NDArray p : adapter.parameters().values()) {
      float[] v = new float[Math.toIntExact(p.getShape().size())];
      for (int i = 0; i < v.length; i++) {
        v[i] = (float) (r.nextGaussian() * 0.1);
      }
      p.set(v);
    }
  }

  /** Zeroes every other weight of each decoder linear (a 50 % unstructured pattern). */
  private static void prune(Transformer base) {
    for (Map.Entry<String, NDArray> e : base.parameters().entrySet()) {
      if (e.getKey().endsWith("_proj.weight")) {
        float[] v = e.getValue().toFloatArray();
        for (int i = 0; i < v.length; i += 2) {
          v[i] = 0f;
        }
        e.getValue().set(v);
      }
    }
  }

  @Test
  void aFreshAdapterLeavesTheLogitsUnchanged() {
    try (Transformer base = model(1);
        LoraAdapter adapter = LoraAdapter.create(base, SPEC, false)) {
      assertEquals(2 * 7, adapter.targets().size());
      assertArrayEquals(logits(base, null), logits(base, adapter));
      try (AdaptedModel view = new AdaptedModel(model(1), LoraAdapter.create(base, SPEC, false))) {
        try (NDManager m = NDManager.newBaseManager()) {
          assertArrayEquals(
              logits(base, null), view.logits(m, m.create(TOKENS, new Shape(2, 6))).toFloatArray());
        }
      }
    }
  }

  @Test
  void mergedWeightsComputeWhatBasePlusAdapterComputed() {
    try (Transformer base = model(2);
        LoraAdapter adapter = LoraAdapter.create(base, SPEC, false)) {
      randomise(adapter, 3);
      float[] plain = logits(base, null);
      float[] adapted = logits(base, adapter);
      assertTrue(maxDiff(plain, adapted) > 1e-2, "the random adapter should change the logits");
      adapter.mergeInto(base);
      float[] merged = logits(base, null);
      assertTrue(
          maxDiff(adapted, merged) <= 1e-4, "merged vs adapted: " + maxDiff(adapted, merged));
    }
  }

  @Test
  void aMaskedMergeKeepsEveryZeroOfThePrunedBase() {
    try (Transformer base = model(4)) {
      prune(base);
      assertTrue(LoraRecovery.hasZeros(base, SPEC));
      Map<String, float[]> before = snapshot(base);
      try (LoraAdapter adapter = LoraAdapter.create(base, SPEC, true)) {
        randomise(adapter, 5);
        float[] adapted = logits(base, adapter);
        adapter.mergeInto(base);
        assertTrue(maxDiff(adapted, logits(base, null)) <= 1e-4);
      }
      int changed = 0;
      for (Map.Entry<String, float[]> e : before.entrySet()) {
        float[] now = base.parameters().get(e.getKey()).toFloatArray();
        for (int i = 0; i < now.length; i++) {
          if (e.getValue()[i] == 0f) {
            assertEquals(0, Float.floatToRawIntBits(now[i]), e.getKey() + " [" + i + "] left 0");
          } else if (now[i] != e.getValue()[i]) {
            changed++;
          }
        }
      }
      assertTrue(changed > 1000, "the merge should move the non-zero weights: " + changed);
    }
  }

  @Test
  void anUnmaskedMergeWouldFillTheZeros() {
    // the control for the test above: without the mask, pruned weights move
    try (Transformer base = model(4)) {
      prune(base);
      String name = base.layerPrefix(0) + "self_attn.q_proj.weight";
      try (LoraAdapter adapter = LoraAdapter.create(base, SPEC, false)) {
        randomise(adapter, 5);
        adapter.mergeInto(base);
      }
      assertTrue(base.parameters().get(name).toFloatArray()[0] != 0f);
    }
  }

  @Test
  void aPeftDirectoryRoundTrips(@TempDir Path tmp) throws Exception {
    Path dir = tmp.resolve("adapter");
    try (Transformer base = model(6)) {
      prune(base);
      for (boolean masked : new boolean[] {false, true}) {
        Path d = dir.resolve(masked ? "masked" : "plain");
        float[] expected;
        try (LoraAdapter adapter = LoraAdapter.create(base, SPEC, masked)) {
          randomise(adapter, 7);
          expected = logits(base, adapter);
          ObjectNode extra = new ObjectMapper().createObjectNode().put("tool", "test");
          PeftAdapterFiles.write(adapter, d, "models/test", extra);
        }
        JsonNode config = new ObjectMapper().readTree(d.resolve("adapter_config.json").toFile());
        assertEquals("LORA", config.get("peft_type").asText());
        assertEquals("CAUSAL_LM", config.get("task_type").asText());
        assertEquals(4, config.get("r").asInt());
        assertEquals(8.0, config.get("lora_alpha").asDouble());
        assertEquals(0.0, config.get("lora_dropout").asDouble());
        assertEquals("none", config.get("bias").asText());
        assertFalse(config.get("fan_in_fan_out").asBoolean());
        assertTrue(config.get("inference_mode").asBoolean());
        assertEquals("models/test", config.get("base_model_name_or_path").asText());
        assertEquals(7, config.get("target_modules").size());
        try (SafetensorsFile f = SafetensorsFile.open(d.resolve("adapter_model.safetensors"))) {
          assertEquals(2 * 2 * 7, f.names().size());
          var a = f.info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight");
          assertArrayEquals(new long[] {4, 48}, a.shape());
          var b = f.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
          assertArrayEquals(new long[] {32, 4}, b.shape());
        }
        JsonNode prov = new ObjectMapper().readTree(d.resolve("compactor.json").toFile());
        assertEquals(masked ? "masked-to-base-nonzeros" : "plain", prov.get("lora_delta").asText());
        assertEquals("test", prov.get("tool").asText());
        try (LoraAdapter back = PeftAdapterFiles.read(d, base)) {
          assertEquals(masked, back.masked());
          assertArrayEquals(expected, logits(base, back));
        }
      }
    }
  }

  /**
   * The written adapter, read as PEFT and vLLM read it (check_lora_adapter.py: key names, shapes,
   * targets) and applied in an independent plain-PyTorch forward, gives the logits the project
   * computes with base + adapter: plain over a dense base, masked over a pruned one.
   */
  @Test
  void adaptersMatchTheTorchReferenceAndThePeftLayout(@TempDir Path tmp) throws Exception {
    Assumptions.assumeTrue(torchAvailable(), "python3 with torch and numpy is not installed");
    for (boolean masked : new boolean[] {false, true}) {
      String name = masked ? "masked" : "plain";
      try (Transformer base = model(10)) {
        if (masked) {
          prune(base);
        }
        Path baseDir = TestModels.write(base, tmp.resolve(name + "-base"), DType.F32);
        Path adapterDir = tmp.resolve(name + "-adapter");
        float[] logits;
        try (LoraAdapter adapter = LoraAdapter.create(base, SPEC, masked)) {
          randomise(adapter, 11);
          PeftAdapterFiles.write(adapter, adapterDir, baseDir.toString(), null);
          logits = logits(base, adapter);
        }
        Path expected = tmp.resolve(name + "-expected");
        try (SafetensorsWriter w = new SafetensorsWriter(expected, Map.of())) {
          java.nio.ByteBuffer b =
              java.nio.ByteBuffer.allocate(TOKENS.length * 8)
                  .order(java.nio.ByteOrder.LITTLE_ENDIAN);
          for (int id : TOKENS) {
            b.putLong(id);
          }
          b.flip();
          w.writeRaw("input_ids", DType.I64, new long[] {2, 6}, b);
          w.write("logits", DType.F32, new long[] {2, 6, logits.length / TOKENS.length}, logits);
        }
        Process p =
            new ProcessBuilder(
                    PYTHON,
                    "src/test/python/check_lora_adapter.py",
                    baseDir.toString(),
                    adapterDir.toString(),
                    expected.resolve("model.safetensors").toString())
                .redirectErrorStream(true)
                .start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "check_lora_adapter.py did not finish");
        assertEquals(0, p.exitValue(), name + ": " + text);
        assertTrue(text.contains("PEFT layout: ok") && text.contains("RESULT: OK"), text);
      }
    }
  }

  /** Debian's python3 has torch (1.13); a python3 earlier on PATH may not. */
  private static final String PYTHON =
      Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";

  private static boolean torchAvailable() {
    try {
      Process p = new ProcessBuilder(PYTHON, "-c", "import numpy, torch").start();
      return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (java.io.IOException | InterruptedException e) {
      return false;
    }
  }

  @Test
  void brokenOrMismatchedAdaptersAreRefused(@TempDir Path tmp) throws Exception {
    try (Transformer base = model(8)) {
      Path good = tmp.resolve("good");
      try (LoraAdapter adapter = LoraAdapter.create(base, SPEC, false)) {
        PeftAdapterFiles.write(adapter, good, "x", null);
      }

      Path otherType = copy(good, tmp.resolve("ia3"));
      editConfig(otherType, c -> c.put("peft_type", "IA3"));
      assertThrows(
          UnsupportedOperationException.class, () -> PeftAdapterFiles.read(otherType, base));

      Path dora = copy(good, tmp.resolve("dora"));
      editConfig(dora, c -> c.put("use_dora", true));
      assertThrows(UnsupportedOperationException.class, () -> PeftAdapterFiles.read(dora, base));

      Path transposed = copy(good, tmp.resolve("fan"));
      editConfig(transposed, c -> c.put("fan_in_fan_out", true));
      assertThrows(
          UnsupportedOperationException.class, () -> PeftAdapterFiles.read(transposed, base));

      Path loraBias = copy(good, tmp.resolve("lorabias"));
      editConfig(loraBias, c -> c.put("lora_bias", true));
      assertThrows(
          UnsupportedOperationException.class, () -> PeftAdapterFiles.read(loraBias, base));

      Path layers = copy(good, tmp.resolve("layers"));
      editConfig(layers, c -> c.putArray("layers_to_transform").add(0));
      assertThrows(UnsupportedOperationException.class, () -> PeftAdapterFiles.read(layers, base));

      Path regex = copy(good, tmp.resolve("regex"));
      editConfig(regex, c -> c.put("target_modules", ".*proj"));
      assertThrows(UnsupportedOperationException.class, () -> PeftAdapterFiles.read(regex, base));

      Path noSuchModule = copy(good, tmp.resolve("nosuch"));
      editConfig(noSuchModule, c -> c.putArray("target_modules").add("q_proj").add("c_attn"));
      var e1 =
          assertThrows(
              CheckpointFormatException.class, () -> PeftAdapterFiles.read(noSuchModule, base));
      assertTrue(e1.getMessage().contains("c_attn"), e1.getMessage());

      Path wrongRank = copy(good, tmp.resolve("rank"));
      editConfig(wrongRank, c -> c.put("r", 2));
      var e2 =
          assertThrows(
              CheckpointFormatException.class, () -> PeftAdapterFiles.read(wrongRank, base));
      assertTrue(e2.getMessage().contains("expected shape [2, 32]"), e2.getMessage());

      Path badRank = copy(good, tmp.resolve("badrank"));
      editConfig(badRank, c -> c.put("r", "eight"));
      assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(badRank, base));

      // fewer target modules than the file holds: an unexpected tensor
      Path extraTensor = copy(good, tmp.resolve("extra"));
      editConfig(extraTensor, c -> c.putArray("target_modules").add("q_proj"));
      var e3 =
          assertThrows(
              CheckpointFormatException.class, () -> PeftAdapterFiles.read(extraTensor, base));
      assertTrue(e3.getMessage().contains("is not the lora_A/lora_B weight"), e3.getMessage());

      // a module listed but without tensors
      Path missing = tmp.resolve("missing");
      Files.createDirectories(missing);
      Files.copy(good.resolve("adapter_config.json"), missing.resolve("adapter_config.json"));
      writeWeights(missing, Map.of());
      var e4 =
          assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(missing, base));
      assertTrue(e4.getMessage().contains("missing"), e4.getMessage());

      // a non-finite value
      Path nan = tmp.resolve("nan");
      Files.createDirectories(nan);
      Files.writeString(
          nan.resolve("adapter_config.json"),
          "{\"peft_type\":\"LORA\",\"r\":1,\"lora_alpha\":1,\"target_modules\":[\"q_proj\"]}");
      float[] a = new float[32];
      a[3] = Float.NaN;
      writeWeights(
          nan,
          Map.of(
              "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", a,
              "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", new float[32],
              "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", new float[32],
              "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight", new float[32]));
      var e5 =
          assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(nan, base));
      assertTrue(e5.getMessage().contains("NaN"), e5.getMessage());

      // pickle only: never opened
      Path pickle = tmp.resolve("pickle");
      Files.createDirectories(pickle);
      Files.copy(good.resolve("adapter_config.json"), pickle.resolve("adapter_config.json"));
      Files.write(pickle.resolve("adapter_model.bin"), new byte[] {(byte) 0x80, 2, 'c'});
      var e6 =
          assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(pickle, base));
      assertTrue(e6.getMessage().contains("pickle"), e6.getMessage());

      // duplicate keys and garbage JSON
      Path dup = copy(good, tmp.resolve("dup"));
      Files.writeString(
          dup.resolve("adapter_config.json"), "{\"peft_type\":\"LORA\",\"r\":4,\"r\":8}");
      assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(dup, base));

      Path masked = copy(good, tmp.resolve("delta"));
      Files.writeString(masked.resolve("compactor.json"), "{\"lora_delta\":\"something\"}");
      assertThrows(CheckpointFormatException.class, () -> PeftAdapterFiles.read(masked, base));

      // a good one still reads
      try (LoraAdapter back = PeftAdapterFiles.read(good, base)) {
        assertEquals(14, back.targets().size());
      }
    }
  }

  @Test
  void specAndTargetsAreChecked() {
    assertThrows(IllegalArgumentException.class, () -> new LoraSpec(0, 16f, List.of("q_proj"), 1));
    assertThrows(IllegalArgumentException.class, () -> new LoraSpec(8, 0f, List.of("q_proj"), 1));
    assertThrows(IllegalArgumentException.class, () -> new LoraSpec(8, 16f, List.of(), 1));
    assertThrows(
        IllegalArgumentException.class, () -> new LoraSpec(8, 16f, List.of("q_proj", "q_proj"), 1));
    assertThrows(IllegalArgumentException.class, () -> new LoraSpec(8, 16f, List.of("a.b"), 1));
    try (Transformer base = model(1)) {
      var e =
          assertThrows(
              IllegalArgumentException.class,
              () -> LoraAdapter.create(base, new LoraSpec(8, 16f, List.of("qkv_proj"), 1), false));
      assertTrue(e.getMessage().contains("qkv_proj"), e.getMessage());
    }
  }

  private static Map<String, float[]> snapshot(Transformer base) {
    Map<String, float[]> out = new java.util.LinkedHashMap<>();
    base.parameters().forEach((k, v) -> out.put(k, v.toFloatArray()));
    return out;
  }

  private static double maxDiff(float[] a, float[] b) {
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  private static Path copy(Path from, Path to) throws Exception {
    Files.createDirectories(to);
    try (var files = Files.list(from)) {
      for (Path f : files.toList()) {
        Files.copy(f, to.resolve(f.getFileName()));
      }
    }
    return to;
  }

  private static void editConfig(Path dir, java.util.function.Consumer<ObjectNode> edit)
      throws Exception {
    ObjectMapper json = new ObjectMapper();
    ObjectNode c = (ObjectNode) json.readTree(dir.resolve("adapter_config.json").toFile());
    edit.accept(c);
    Files.writeString(dir.resolve("adapter_config.json"), json.writeValueAsString(c));
  }

  private static void writeWeights(Path dir, Map<String, float[]> tensors) throws Exception {
    Path tmp = dir.resolve("w");
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, Map.of())) {
      for (Map.Entry<String, float[]> e : new java.util.TreeMap<>(tensors).entrySet()) {
        boolean isA = e.getKey().contains("lora_A");
        long[] shape = isA ? new long[] {1, 32} : new long[] {32, 1};
        w.write(e.getKey(), DType.F32, shape, e.getValue());
      }
    }
    Files.move(tmp.resolve("model.safetensors"), dir.resolve("adapter_model.safetensors"));
  }
}
