package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.Bf16;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.PruningOutput.Format;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.export.CompressedTensorsReader;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The stored forms of a pruned model: SparseGPT 2:4 + int4 in one sweep (dense dequantized weights
 * and a pack-quantized compressed-tensors copy whose codes decode to them), sparse-24-bitmask from
 * Pruning.run, and the combinations refused.
 */
class PruningOutputTest {

  @TempDir static Path tmp;
  static Path dense;
  static List<int[]> calibration;

  @BeforeAll
  static void setUp() throws Exception {
    dense = TinyReferenceModel.shipped();
    calibration = Corpus.europarlEnglish().calibrationSamples(new ByteTokenizer(), 8, 64, 3);
  }

  @Test
  void jointTwoFourInt4CodesDecodeToTheDenseWeightsAndKeepThePattern() throws Exception {
    Path out = tmp.resolve("joint");
    PruningOutput o = new PruningOutput(Format.DENSE, 4, 32, true);
    PruningReport r =
        Pruning.run(
            PruningSpec.of(Method.SPARSEGPT, new NmPattern(2, 4)),
            o,
            dense,
            out,
            () -> calibration,
            Device.cpu());
    ModelConfig config = ModelConfig.read(dense);
    assertEquals(7 * config.numLayers(), r.tensors().size());
    Path ct = out.resolve(SparseGptPruner.COMPRESSED_TENSORS_DIR);
    JsonNode q =
        new ObjectMapper().readTree(ct.resolve("config.json").toFile()).path("quantization_config");
    assertEquals("pack-quantized", q.path("format").asText());
    assertEquals(32, q.at("/config_groups/group_0/weights/group_size").asInt());
    assertEquals("dense", q.at("/sparsity_config/format").asText());
    assertEquals("2:4", q.at("/sparsity_config/sparsity_structure").asText());
    CompressedTensorsScheme scheme =
        new CompressedTensorsScheme(
            CompressedTensorsScheme.Format.PACK_QUANTIZED, 4, true, 32, null);
    DType dtype;
    try (TensorSource d = Checkpoints.open(out);
        TensorSource c = Checkpoints.open(ct)) {
      for (int layer = 0; layer < config.numLayers(); layer++) {
        String prefix = Layout.layerPrefix(config, "", layer);
        for (String linear : LinearGroups.compressible(config, layer)) {
          dtype = d.info(prefix + linear + ".weight").dtype();
          QuantizedLinear ql = CompressedTensorsReader.readLinear(c, prefix + linear, scheme);
          float[] decoded = ql.dequantize();
          float[] stored = d.readFloats(prefix + linear + ".weight");
          int cols = ql.cols();
          for (int i = 0; i < decoded.length; i++) {
            float expected =
                dtype == DType.BF16 ? Bf16.toFloat(Bf16.fromFloat(decoded[i])) : decoded[i];
            assertEquals(expected, stored[i], 0f, prefix + linear + " element " + i);
          }
          for (int row = 0; row < ql.rows(); row++) {
            for (int g = 0; g < cols; g += 4) {
              int zeros = 0;
              for (int j = g; j < g + 4; j++) {
                zeros += decoded[row * cols + j] == 0f ? 1 : 0;
              }
              assertTrue(zeros >= 2, prefix + linear + " row " + row + " group " + g);
            }
          }
        }
      }
    }
    try (Transformer t = Transformer.load(out, Device.cpu())) {
      assertEquals(config.numLayers(), t.config().numLayers());
    }
  }

  @Test
  void sparse24BitmaskFromPruningRunLoadsLikeTheDenseResult() throws Exception {
    PruningSpec spec = PruningSpec.of(Method.MAGNITUDE, new NmPattern(2, 4));
    Path plain = tmp.resolve("plain");
    Pruning.run(spec, dense, plain, () -> calibration, Device.cpu());
    Path sparse = tmp.resolve("sparse24");
    Pruning.run(
        spec,
        new PruningOutput(Format.SPARSE_24_BITMASK, 0, 0, true),
        dense,
        sparse,
        () -> calibration,
        Device.cpu());
    try (TensorSource a = Checkpoints.open(plain);
        TensorSource b = Checkpoints.open(sparse)) {
      assertEquals(a.names().size(), b.names().size());
      for (String name : a.names()) {
        assertEquals(TestModels.bytes(a.raw(name)), TestModels.bytes(b.raw(name)), name);
      }
    }
    try (var files = Files.list(tmp)) {
      assertTrue(
          files.noneMatch(p -> p.getFileName().toString().startsWith(".pruned-dense-")),
          "the dense intermediate is removed");
    }
  }

  @Test
  void refusesWhatNoFormatHere() {
    PruningSpec half = PruningSpec.of(Method.SPARSEGPT, 0.5);
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> new PruningOutput(Format.SPARSE_24_BITMASK, 4, 128, true));
    assertTrue(e.getMessage().contains("marlin-24"), e.getMessage());
    assertThrows(
        UnsupportedOperationException.class,
        () -> new PruningOutput(Format.SPARSE_24_BITMASK, 0, 0, true).check(half));
    assertThrows(
        UnsupportedOperationException.class,
        () ->
            new PruningOutput(Format.DENSE, 4, 0, true)
                .check(PruningSpec.of(Method.WANDA, new NmPattern(2, 4))));
    assertThrows(
        UnsupportedOperationException.class, () -> new PruningOutput(Format.DENSE, 3, 0, true));
    assertArrayEquals(
        new String[] {"dense", "sparse-24-bitmask", "sparse-bitmask"},
        java.util.Arrays.stream(Format.values()).map(Format::value).toArray(String[]::new));
    assertEquals(Format.SPARSE_24_BITMASK, Format.parse("Sparse-24-Bitmask"));
  }
}
