package dev.compactor.core.quant.codebook;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.Codebook;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CodebookCheckpointTest {

  @TempDir Path tmp;

  @Test
  void writtenCheckpointOpensDequantizedWithTheSameValues() throws Exception {
    Path model = TinyReferenceModel.shipped();
    Path out = tmp.resolve("cb3");
    List<Long> progress = new ArrayList<>();
    CodebookModelQuantizer.Summary s =
        CodebookModelQuantizer.run(
            model,
            new CodebookSettings(3, Sensitivity.UNIFORM),
            List.of(),
            out,
            Map.of(),
            (phase, done, total) -> progress.add(done));
    assertEquals(List.of(1L, 2L, 3L, 4L), progress);
    assertEquals(4 * 7, s.quantizedLinears());
    JsonNode q = new ObjectMapper().readTree(out.resolve("config.json").toFile());
    assertEquals(Codebook.QUANT_METHOD, q.at("/quantization_config/quant_method").asText());
    assertEquals(3, q.at("/quantization_config/bits").asInt());
    try (TensorSource src = Checkpoints.open(model);
        TensorSource cb = Checkpoints.open(out);
        TensorSource stored = Checkpoints.openStored(out)) {
      assertEquals(src.names().stream().sorted().toList(), cb.names().stream().sorted().toList());
      for (String name : src.names()) {
        float[] original = src.readFloats(name);
        if (!LayerwiseQuantizer.isDecoderLinear(name)) {
          assertArrayEquals(original, cb.readFloats(name), name);
          continue;
        }
        assertEquals(DType.F16, cb.info(name).dtype());
        long[] shape = src.info(name).shape();
        String p = name.substring(0, name.length() - ".weight".length());
        assertArrayEquals(
            new long[] {shape[0], (shape[1] * 3 + 7) / 8}, stored.info(p + ".indices").shape());
        float[] expected =
            CodebookQuantizer.quantize(original, null, (int) shape[0], (int) shape[1], 3, 50, true)
                .dequantize();
        assertArrayEquals(expected, cb.readFloats(name), name);
        // 8 values per row at most
        for (int r = 0; r < shape[0]; r++) {
          long distinct =
              java.util.stream.IntStream.range(0, (int) shape[1])
                  .mapToObj(j -> expected[j])
                  .distinct()
                  .count();
          assertTrue(distinct <= 8);
        }
      }
    }
    // 3 bits a weight plus 8 F16 centroids a row: 1 bit more on the 128-wide rows, 1/4 on the
    // 512-wide down_proj rows, and 16 bytes of shape per linear
    double expectedBits = 0;
    long params = 0;
    for (int[] rc :
        new int[][] {
          {128, 128}, {64, 128}, {64, 128}, {128, 128}, {512, 128}, {512, 128}, {128, 512}
        }) {
      long n = (long) rc[0] * rc[1];
      params += n;
      expectedBits += rc[0] * ((rc[1] * 3 + 7) / 8 * 8 + 8 * 16) + 128;
    }
    assertEquals(expectedBits / params, s.bitsPerWeight(), 1e-9);
    assertTrue(
        Files.size(out.resolve("model.safetensors"))
            < Files.size(model.resolve("model.safetensors")) / 3);
    try (Transformer t = Transformer.load(out, Device.cpu())) {
      assertEquals(4, t.config().numLayers());
    }
    UnsupportedOperationException gguf =
        assertThrows(
            UnsupportedOperationException.class,
            () -> GgufExport.export(out, LlamaFileType.Q4_0, Map.of(), tmp.resolve("x.gguf")));
    assertTrue(
        gguf.getMessage()
            .startsWith("not supported: codebook checkpoint " + out + " exported as GGUF"),
        gguf.getMessage());
  }

  @Test
  void hessianAndFisherSensitivitiesRunOnTheTinyModel() throws Exception {
    Path model = TinyReferenceModel.shipped();
    Random rnd = new Random(1);
    List<int[]> windows = new ArrayList<>();
    for (int w = 0; w < 4; w++) {
      int[] t = new int[32];
      for (int i = 0; i < t.length; i++) {
        t[i] = rnd.nextInt(256);
      }
      windows.add(t);
    }
    for (Sensitivity sens : List.of(Sensitivity.HESSIAN, Sensitivity.FISHER)) {
      Path out = tmp.resolve(sens.id());
      CodebookModelQuantizer.Summary s =
          CodebookModelQuantizer.run(
              model, new CodebookSettings(4, sens), windows, out, Map.of(), ProgressListener.NONE);
      assertEquals(28, s.quantizedLinears());
      try (TensorSource cb = Checkpoints.open(out);
          TensorSource uniform = Checkpoints.open(model)) {
        String name = "model.layers.1.mlp.down_proj.weight";
        float[] w = cb.readFloats(name);
        float[] o = uniform.readFloats(name);
        double err = 0;
        for (int i = 0; i < w.length; i++) {
          err += (w[i] - o[i]) * (w[i] - o[i]);
        }
        assertTrue(err > 0 && err < 0.05 * sumSq(o), sens + " error " + err);
      }
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            CodebookModelQuantizer.run(
                model,
                new CodebookSettings(4, Sensitivity.FISHER),
                List.of(),
                tmp.resolve("none"),
                Map.of(),
                ProgressListener.NONE));
  }

  @Test
  void hostileFilesAreRefusedWithWhatWasExpected() throws Exception {
    assertRefused(3, 4, 8, 4, 3, "x.codebook: expected F16[4, 8], found F16[4, 4]");
    assertRefused(3, 4, 8, 8, 2, "x.indices: expected U8[4, 3], found U8[4, 2]");
    assertRefused(4, 4, 6, 16, 6, "x.indices: expected U8[4, 3], found U8[4, 6]");
    Path dir = write(3, 4, 8, 8, -1, false);
    assertEquals(
        "x: expected .weight_shape, .codebook and .indices, found no x.indices",
        assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(dir).close())
            .getMessage());
    Path five = write(5, 4, 8, 8, 3, false);
    assertTrue(
        assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(five).close())
            .getMessage()
            .contains("codebook quantization stores 2, 3 or 4 bits per weight, found 5"));
    Path both = write(3, 4, 8, 8, 3, true);
    assertInstanceOf(
        CheckpointFormatException.class,
        assertThrows(Exception.class, () -> Checkpoints.open(both).close()));
  }

  private void assertRefused(int bits, int rows, int cols, int k, int rowBytes, String message)
      throws Exception {
    Path dir = write(bits, rows, cols, k, rowBytes, false);
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> Checkpoints.open(dir).close());
    assertEquals(message, e.getMessage());
  }

  private int dirs;

  /** One linear {@code x}: shape rows x cols, a codebook of k columns, rowBytes packed bytes. */
  private Path write(int bits, int rows, int cols, int k, int rowBytes, boolean alsoDense)
      throws Exception {
    Path dir = tmp.resolve("hostile" + dirs++);
    try (SafetensorsWriter w = new SafetensorsWriter(dir, Map.of())) {
      ByteBuffer shape = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
      shape.putLong(rows).putLong(cols).flip();
      w.writeRaw("x" + Codebook.SHAPE, DType.I64, new long[] {2}, shape);
      w.write("x" + Codebook.CODEBOOK, DType.F16, new long[] {rows, k}, new float[rows * k]);
      if (rowBytes >= 0) {
        w.writeRaw(
            "x" + Codebook.INDICES,
            DType.U8,
            new long[] {rows, rowBytes},
            ByteBuffer.allocate(rows * rowBytes));
      }
      if (alsoDense) {
        w.write("x.weight", DType.F32, new long[] {rows, cols}, new float[rows * cols]);
      }
    }
    Files.writeString(
        dir.resolve("config.json"),
        "{\"model_type\":\"llama\",\"quantization_config\":{\"quant_method\":\"compactor-codebook\","
            + "\"bits\":"
            + bits
            + "}}");
    return dir;
  }

  private static double sumSq(float[] v) {
    double s = 0;
    for (float f : v) {
      s += f * f;
    }
    return s;
  }
}
