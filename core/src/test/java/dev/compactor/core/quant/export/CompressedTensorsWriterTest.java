package dev.compactor.core.quant.export;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.Fp16;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.gptq.GptqConfig;
import dev.compactor.core.quant.gptq.GptqQuantizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Packing pinned to compressed-tensors' own examples, writer/reader round trips, and the committed
 * fixtures that core/src/test/python/read_compressed_tensors.py decodes independently.
 */
class CompressedTensorsWriterTest {

  static final Path FIXTURES = Path.of("src/test/resources/compressed_tensors");
  static final ModelConfig CONFIG = ModelConfig.llama(40, 64, 96, 1, 4, 4, 32);

  @TempDir Path tmp;

  @Test
  void packingMatchesCompressedTensorsDocstring() {
    // pack_to_int32 docstring, num_bits=8: [1, 2] -> unsigned [129, 130, 0, 0] -> 33409.
    assertArrayEquals(
        new int[] {33409}, Int32Packing.packRows(new byte[] {(byte) 129, (byte) 130}, 1, 2, 8));
    // 4 bits, first value in the lowest nibble.
    byte[] codes = {1, 2, 3, 4, 5, 6, 7, 8, 15};
    int[] packed = Int32Packing.packRows(codes, 1, 9, 4);
    assertArrayEquals(new int[] {0x87654321, 0xf}, packed);
    assertArrayEquals(codes, Int32Packing.unpackRows(packed, 1, 9, 4));
  }

  @Test
  void packUnpackRoundTripsBothDimensions() {
    Random r = new Random(1);
    for (int bits : new int[] {4, 8}) {
      for (int[] shape : new int[][] {{3, 17}, {9, 8}, {16, 64}}) {
        byte[] codes = new byte[shape[0] * shape[1]];
        for (int i = 0; i < codes.length; i++) {
          codes[i] = (byte) r.nextInt(1 << bits);
        }
        assertArrayEquals(
            codes,
            Int32Packing.unpackRows(
                Int32Packing.packRows(codes, shape[0], shape[1], bits), shape[0], shape[1], bits));
        assertArrayEquals(
            codes,
            Int32Packing.unpackColumns(
                Int32Packing.packColumns(codes, shape[0], shape[1], bits),
                shape[0],
                shape[1],
                bits));
      }
    }
  }

  /** The fixtures: name -> (scheme, quantized q_proj). */
  static Map<String, Object[]> fixtures() {
    Random r = new Random(42);
    int rows = 12;
    int cols = 64;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() * 0.05);
    }
    double[] h = new double[cols * cols];
    for (int t = 0; t < 200; t++) {
      double[] x = new double[cols];
      for (int j = 0; j < cols; j++) {
        x[j] = r.nextGaussian() * (1 + j % 5) + (j > 0 ? 0.5 * x[j - 1] : 0);
      }
      for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
          h[i * cols + j] += x[i] * x[j] / 100;
        }
      }
    }
    QuantizedLinear gptqGroup =
        new GptqQuantizer(new GptqConfig(4, true, 32, 0.01, 64, GptqConfig.ActOrder.GROUP))
            .quantize(w, rows, cols, h)
            .weight();
    QuantizedLinear asym =
        QuantizedLinear.of(new RtnQuantizer(4, false, 32).quantize(w, rows, cols));
    QuantizedLinear int8 =
        QuantizedLinear.of(new RtnQuantizer(8, false, 0).quantize(w, rows, cols));
    return Map.of(
        "w4_sym_g32_gidx",
        new Object[] {
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.PACK_QUANTIZED, 4, true, 32, "group"),
          gptqGroup
        },
        "w4_asym_g32",
        new Object[] {
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.PACK_QUANTIZED, 4, false, 32, null),
          asym
        },
        "w8_asym_channel_int",
        new Object[] {
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.INT_QUANTIZED, 8, false, 0, null),
          int8
        });
  }

  /**
   * Writes one fixture: a one-layer model dir plus expected.safetensors (F32 dequantized q_proj).
   */
  static void writeFixture(Path dir, CompressedTensorsScheme scheme, QuantizedLinear q)
      throws IOException {
    try (CompressedTensorsWriter w =
        new CompressedTensorsWriter(dir, scheme, DType.F16, Map.of("producer", "compactor-test"))) {
      w.writeLinear("model.layers.0.self_attn.q_proj", q);
      w.writeDense("model.norm.weight", new long[] {64}, new float[64]);
      w.finish(CONFIG, List.of("lm_head"));
    }
    float[] scales = q.scales().clone();
    for (int i = 0; i < scales.length; i++) {
      scales[i] = Fp16.toFloat(Fp16.fromFloat(scales[i]));
    }
    QuantizedLinear stored =
        new QuantizedLinear(
            q.rows(),
            q.cols(),
            q.bits(),
            q.symmetric(),
            q.groupSize(),
            q.codes(),
            scales,
            q.zeros(),
            q.gIdx());
    Path expected = dir.resolve("expected");
    try (SafetensorsWriter e = new SafetensorsWriter(expected, Map.of())) {
      e.write(
          "model.layers.0.self_attn.q_proj.weight",
          DType.F32,
          new long[] {q.rows(), q.cols()},
          stored.dequantize());
    }
  }

  @Test
  void writerIsPinnedToTheCommittedFixturesAndReadsBack() throws IOException {
    for (Map.Entry<String, Object[]> f : fixtures().entrySet()) {
      CompressedTensorsScheme scheme = (CompressedTensorsScheme) f.getValue()[0];
      QuantizedLinear q = (QuantizedLinear) f.getValue()[1];
      Path dir = tmp.resolve(f.getKey());
      writeFixture(dir, scheme, q);
      if (Boolean.getBoolean("compactor.regenerateFixtures")) {
        copyTree(dir, FIXTURES.resolve(f.getKey()));
      }
      for (String file :
          List.of("model.safetensors", "config.json", "expected/model.safetensors")) {
        assertArrayEquals(
            Files.readAllBytes(FIXTURES.resolve(f.getKey()).resolve(file)),
            Files.readAllBytes(dir.resolve(file)),
            f.getKey() + "/" + file + " differs from the committed fixture");
      }
      try (TensorSource s = Checkpoints.open(dir)) {
        QuantizedLinear back =
            CompressedTensorsReader.readLinear(s, "model.layers.0.self_attn.q_proj", scheme);
        assertArrayEquals(q.codes(), back.codes(), f.getKey());
        assertArrayEquals(q.zeros(), back.zeros(), f.getKey());
        assertArrayEquals(q.gIdx(), back.gIdx(), f.getKey());
        assertArrayEquals(q.scales(), back.scales(), 1e-3f * 0.05f, f.getKey());
        assertTrue(s.contains("model.norm.weight"));
      }
      JsonNode qc =
          new ObjectMapper()
              .readTree(dir.resolve("config.json").toFile())
              .get("quantization_config");
      assertEquals("compressed-tensors", qc.get("quant_method").asText());
      assertEquals(scheme.format().value(), qc.get("format").asText());
      assertEquals("compressed", qc.get("quantization_status").asText());
      JsonNode weights = qc.at("/config_groups/group_0/weights");
      assertEquals(scheme.bits(), weights.get("num_bits").asInt());
      assertEquals(scheme.symmetric(), weights.get("symmetric").asBoolean());
      assertEquals(scheme.groupSize() == 0 ? "channel" : "group", weights.get("strategy").asText());
      assertTrue(qc.at("/config_groups/group_0/input_activations").isNull());
      assertEquals("lm_head", qc.get("ignore").get(0).asText());
    }
  }

  @Test
  void refusesMismatchedWeightsAndSchemes() throws IOException {
    QuantizedLinear q = (QuantizedLinear) fixtures().get("w4_asym_g32")[1];
    try (CompressedTensorsWriter w =
        new CompressedTensorsWriter(tmp, CompressedTensorsScheme.w4a16(32), DType.F16, Map.of())) {
      assertThrows(IllegalArgumentException.class, () -> w.writeLinear("x", q));
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new CompressedTensorsScheme(
                CompressedTensorsScheme.Format.INT_QUANTIZED, 4, true, 32, null));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new CompressedTensorsScheme(
                CompressedTensorsScheme.Format.PACK_QUANTIZED, 4, true, 0, "group"));
    assertNull(CompressedTensorsScheme.w4a16(128).actOrder());
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (var walk = Files.walk(from)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
    }
  }
}
