package dev.compactor.core.quant.table;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.Fp8E4M3;
import dev.compactor.core.quant.Nf4;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LayerwiseQuantizerTest {

  static final ModelConfig SMALL = ModelConfig.llama(257, 128, 256, 2, 4, 2, 32);

  @TempDir Path dir;

  @Test
  void roundingMethodsWriteExactlyWhatTheReferenceQuantizersGive() throws Exception {
    Path model = TableTestModels.write(dir.resolve("m"), SMALL, 3);
    for (WeightQuantization q :
        List.of(
            new WeightQuantization(Method.RTN, 4, 64),
            new WeightQuantization(Method.RTN, 8, 0),
            new WeightQuantization(Method.NF4, 4, 64),
            new WeightQuantization(Method.FP8, 8, 0))) {
      Path out = dir.resolve(q.method().id() + q.bits());
      List<Long> progress = new ArrayList<>();
      LayerwiseQuantizer.Summary s;
      try (DequantizedCheckpointSink sink = new DequantizedCheckpointSink(model, out, Map.of())) {
        s =
            LayerwiseQuantizer.run(
                model, q, List.of(), sink, (phase, done, total) -> progress.add(done));
        sink.finish(DequantizedCheckpointSink.quantizationConfig(q, s), null);
      }
      assertEquals(List.of(1L, 2L), progress, "one progress report per layer");
      assertEquals(14, s.quantizedLinears());
      try (TensorSource a = Checkpoints.open(model);
          TensorSource b = Checkpoints.open(out)) {
        assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
        for (String n : a.names()) {
          float[] w = a.readFloats(n);
          long[] shape = a.info(n).shape();
          float[] expected =
              n.endsWith("_proj.weight") ? reference(q, w, (int) shape[0], (int) shape[1]) : w;
          assertArrayEquals(expected, b.readFloats(n), q.label() + " " + n);
        }
      }
      JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
      assertEquals(q.method().id(), config.at("/quantization_config/method").asText());
      try (Transformer t = Transformer.load(out, Device.cpu())) {
        assertEquals(257, t.vocabSize());
      }
    }
  }

  /**
   * Qwen3's, Phi-3's, Mixtral's and Qwen MoE's linears, fused ones, experts and the shared expert
   * included, round like any other linear; the routers and {@code shared_expert_gate} stay as they
   * were. (Calibrated methods on them: FamilyCalibrationTest.)
   */
  @Test
  void roundsQwen3Phi3AndMixtralLinears() throws Exception {
    WeightQuantization q = new WeightQuantization(Method.RTN, 8, 0);
    // linears of the whole model: Qwen2-MoE one dense layer (7) and two sparse ones (4 attention,
    // 4 experts x 3, shared expert 3); Qwen3-MoE two dense and two sparse (4 + 8 experts x 3)
    Map<String, Integer> linears =
        Map.of(
            "qwen3_qk_norm", 2 * 7,
            "phi3_fused", 2 * 4,
            "mixtral_moe", 2 * (4 + 4 * 3),
            "qwen2_moe_shared", 7 + 2 * (4 + 4 * 3 + 3),
            "qwen3_moe_qk_norm", 2 * 7 + 2 * (4 + 8 * 3));
    for (String name :
        List.of(
            "qwen3_qk_norm",
            "phi3_fused",
            "mixtral_moe",
            "qwen2_moe_shared",
            "qwen3_moe_qk_norm")) {
      try (Golden g = new Golden(name)) {
        Path out = dir.resolve(name);
        LayerwiseQuantizer.Summary s;
        try (DequantizedCheckpointSink sink = new DequantizedCheckpointSink(g.dir, out, Map.of())) {
          s = LayerwiseQuantizer.run(g.dir, q, List.of(), sink, ProgressListener.NONE);
          sink.finish(DequantizedCheckpointSink.quantizationConfig(q, s), null);
        }
        assertEquals(linears.get(name), s.quantizedLinears(), name);
        try (TensorSource a = Checkpoints.open(g.dir);
            TensorSource b = Checkpoints.open(out)) {
          assertEquals(new TreeSet<>(a.names()), new TreeSet<>(b.names()));
          for (String n : a.names()) {
            float[] w = a.readFloats(n);
            long[] shape = a.info(n).shape();
            float[] expected =
                LayerwiseQuantizer.isDecoderLinear(n)
                    ? reference(q, w, (int) shape[0], (int) shape[1])
                    : w;
            assertArrayEquals(expected, b.readFloats(n), name + " " + n);
          }
        }
        try (Transformer t = Transformer.load(out, Device.cpu())) {
          assertEquals(name.contains("moe") ? 64 : 96, t.vocabSize());
        }
      }
    }
  }

  private static float[] reference(WeightQuantization q, float[] w, int rows, int cols) {
    QuantizedTensor t =
        switch (q.method()) {
          case RTN -> new RtnQuantizer(q.bits(), false, q.groupSize()).quantize(w, rows, cols);
          case NF4 -> Nf4.quantize(w, rows, cols, q.groupSize());
          case FP8 -> Fp8E4M3.quantize(w, rows, cols, true);
          default -> throw new IllegalArgumentException();
        };
    return t.dequantize();
  }

  @Test
  void storedBytesCountPackedCodesFp16ScalesAndPackedZeroPoints() {
    int rows = 8;
    int cols = 256;
    QuantizedLinear asym =
        QuantizedLinear.of(
            new RtnQuantizer(4, false, 128).quantize(new float[rows * cols], rows, cols));
    // 2048 codes at 4 bits + 16 groups x (2-byte scale + half-byte zero point)
    assertEquals(1024 + 32 + 8, LayerwiseQuantizer.storedBytes(asym));
    QuantizedLinear sym =
        QuantizedLinear.of(
            new RtnQuantizer(8, true, 0).quantize(new float[rows * cols], rows, cols));
    assertEquals(2048 + 16, LayerwiseQuantizer.storedBytes(sym));
  }

  @Test
  void gptqAndAwqNeedSamplesAndReportEveryLayer() throws Exception {
    Path model = TableTestModels.write(dir.resolve("m"), SMALL, 4);
    WeightQuantization gptq = new WeightQuantization(Method.GPTQ, 4, 128);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            LayerwiseQuantizer.run(model, gptq, List.of(), (l, w, q) -> {}, ProgressListener.NONE));
    for (Method m : List.of(Method.GPTQ, Method.AWQ)) {
      List<Integer> layers = new ArrayList<>();
      LayerwiseQuantizer.Summary s =
          LayerwiseQuantizer.run(
              model,
              new WeightQuantization(m, 4, 128),
              TableTestModels.samples(4, 16, 1),
              (layer, weights, quantized) -> {
                layers.add(layer);
                assertEquals(7, quantized.size());
                for (var e : quantized.entrySet()) {
                  assertArrayEquals(
                      e.getValue().dequantize(), weights.get(e.getKey() + ".weight"), e.getKey());
                }
              },
              ProgressListener.NONE);
      assertEquals(List.of(0, 1), layers);
      assertTrue(s.bitsPerWeight() > 4 && s.bitsPerWeight() < 4.5, "bpw " + s.bitsPerWeight());
    }
  }

  @Test
  void impossibleSettingsAreRefusedWithTheReason() {
    assertThrows(IllegalArgumentException.class, () -> Method.parse("int3"));
    assertThrows(IllegalArgumentException.class, () -> new WeightQuantization(Method.RTN, 5, 128));
    assertThrows(IllegalArgumentException.class, () -> new WeightQuantization(Method.AWQ, 3, 128));
    // 3 bits: the dequantized evaluation path only; compressed-tensors refuses the grid
    WeightQuantization three = new WeightQuantization(Method.GPTQ, 3, 128, true);
    assertThrows(
        UnsupportedOperationException.class,
        () -> dev.compactor.core.quant.pipeline.QuantizationPipeline.scheme(three));
    assertThrows(IllegalArgumentException.class, () -> new WeightQuantization(Method.RTN, 4, 100));
    assertThrows(IllegalArgumentException.class, () -> new WeightQuantization(Method.FP8, 8, 128));
    assertThrows(IllegalArgumentException.class, () -> new WeightQuantization(Method.NF4, 8, 64));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> new WeightQuantization(Method.GPTQ, 4, 128).checkFits(128, 96));
    assertTrue(e.getMessage().contains("96"), e.getMessage());
  }
}
