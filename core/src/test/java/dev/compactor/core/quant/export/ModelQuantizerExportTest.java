package dev.compactor.core.quant.export;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.awq.AwqConfig;
import dev.compactor.core.quant.awq.AwqLayerQuantizer;
import dev.compactor.core.quant.awq.AwqModelQuantizer;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.gptq.GptqConfig;
import dev.compactor.core.quant.gptq.GptqLayerQuantizer;
import dev.compactor.core.quant.gptq.GptqModelQuantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Whole-model GPTQ and AWQ runs written as compressed-tensors and read back linear by linear. */
class ModelQuantizerExportTest {

  static final ModelConfig CONFIG = ModelConfig.llama(40, 64, 128, 2, 4, 2, 32);

  @TempDir Path dir;

  @Test
  void gptqAndAwqCheckpointsDecodeToTheWeightsTheQuantizersComputedWith() throws Exception {
    Path model = dir.resolve("model");
    try (Transformer t = Transformer.randomInit(CONFIG, 3, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    Files.writeString(model.resolve("tokenizer.json"), "{}");
    List<int[]> samples = new ArrayList<>();
    Random r = new Random(1);
    for (int i = 0; i < 4; i++) {
      int[] s = new int[16];
      for (int j = 0; j < s.length; j++) {
        s[j] = r.nextInt(40);
      }
      samples.add(s);
    }
    GptqConfig gptq = new GptqConfig(4, true, 32, 0.01, 128, GptqConfig.ActOrder.GROUP);
    Path gptqOut = dir.resolve("gptq");
    GptqModelQuantizer.quantize(model, samples, gptq, gptqOut, DType.F16);
    Map<String, float[]> expected = new HashMap<>();
    run(
        model,
        samples,
        layer -> LinearGroups.trueSequential(CONFIG, layer),
        CalibrationCollector.Propagation.QUANTIZED,
        new GptqLayerQuantizer(gptq, sink(expected)));
    check(gptqOut, GptqModelQuantizer.scheme(gptq), expected, "group");

    AwqConfig awq = AwqConfig.int4(32, false);
    Path awqOut = dir.resolve("awq");
    AwqModelQuantizer.quantize(model, samples, awq, awqOut, DType.F16);
    expected.clear();
    run(
        model,
        samples,
        layer -> LinearGroups.oneStage(CONFIG, layer),
        CalibrationCollector.Propagation.ORIGINAL,
        new AwqLayerQuantizer(CONFIG, awq, true, sink(expected)));
    check(awqOut, AwqModelQuantizer.scheme(awq), expected, null);
  }

  @Test
  void rtnCheckpointDecodesToRtnWeights() throws Exception {
    Path model = dir.resolve("model");
    try (Transformer t = Transformer.randomInit(CONFIG, 4, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    Path out = dir.resolve("rtn");
    RtnCheckpointQuantizer.quantize(model, 4, false, 64, out, DType.BF16);
    Map<String, float[]> expected = new HashMap<>();
    RtnQuantizer rtn = new RtnQuantizer(4, false, 64);
    try (TensorSource s = Checkpoints.open(model)) {
      for (int i = 0; i < CONFIG.numLayers(); i++) {
        for (Layout.Spec spec : Layout.layer(CONFIG, i)) {
          String name = Layout.layerPrefix(CONFIG, "", i) + spec.name();
          float[] w = s.readFloats(name);
          String linear = spec.name().replace(".weight", "");
          expected.put(
              name,
              Layout.linears(CONFIG, i).contains(linear)
                  ? rtn.quantize(w, (int) spec.shape()[0], (int) spec.shape()[1]).dequantize()
                  : w);
        }
      }
    }
    JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
    assertEquals("bfloat16", config.get("torch_dtype").asText());
    checkLinears(out, RtnCheckpointQuantizer.scheme(4, false, 64), expected, 1e-2f);
  }

  private static QuantizedLayerSink sink(Map<String, float[]> into) {
    return (layer, weights, quantized) -> {
      for (Map.Entry<String, float[]> e : weights.entrySet()) {
        into.put(Layout.layerPrefix(CONFIG, "", layer) + e.getKey(), e.getValue());
      }
    };
  }

  private static void run(
      Path model,
      List<int[]> samples,
      java.util.function.IntFunction<List<List<String>>> stages,
      CalibrationCollector.Propagation p,
      LayerQuantizer q)
      throws Exception {
    try (TensorSource source = Checkpoints.open(model)) {
      new CalibrationCollector(CONFIG, stages, p, true, 4).run(source, samples, q);
    }
  }

  private static void check(
      Path out, CompressedTensorsScheme scheme, Map<String, float[]> expected, String actorder)
      throws Exception {
    JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
    assertEquals("float16", config.get("torch_dtype").asText());
    JsonNode weights = config.at("/quantization_config/config_groups/group_0/weights");
    assertEquals(actorder == null, weights.get("actorder").isNull());
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    checkLinears(out, scheme, expected, 1e-3f);
  }

  private static void checkLinears(
      Path out, CompressedTensorsScheme scheme, Map<String, float[]> expected, float relative)
      throws Exception {
    try (TensorSource s = Checkpoints.open(out)) {
      assertTrue(s.contains("model.embed_tokens.weight"));
      assertTrue(s.contains("lm_head.weight"));
      for (int i = 0; i < CONFIG.numLayers(); i++) {
        String prefix = Layout.layerPrefix(CONFIG, "", i);
        for (String linear : Layout.linears(CONFIG, i)) {
          float[] got = CompressedTensorsReader.readLinear(s, prefix + linear, scheme).dequantize();
          float[] want = expected.get(prefix + linear + ".weight");
          float tolerance = 0;
          for (float v : want) {
            tolerance = Math.max(tolerance, Math.abs(v));
          }
          // scales are stored as fp16: relative error below 2^-11
          assertArrayEquals(want, got, tolerance * relative, prefix + linear);
        }
        float[] norm = s.readFloats(prefix + "input_layernorm.weight");
        assertArrayEquals(expected.get(prefix + "input_layernorm.weight"), norm, 1e-2f);
      }
    }
  }
}
