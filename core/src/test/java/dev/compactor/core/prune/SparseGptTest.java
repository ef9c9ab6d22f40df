package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.prune.PruningSpec.Granularity;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** SparseGPT on one layer against an independent PyTorch transcription of fasterprune. */
class SparseGptTest {

  private static final Path GOLDEN =
      Path.of("src/test/resources/golden/sparsegpt/sparsegpt_golden.safetensors");

  /** H = 2/n X^T X in double. */
  static double[] hessian(float[] x, int n, int cols) {
    double[] h = new double[cols * cols];
    for (int t = 0; t < n; t++) {
      for (int i = 0; i < cols; i++) {
        double xi = x[t * cols + i];
        if (xi == 0) {
          continue;
        }
        for (int j = 0; j < cols; j++) {
          h[i * cols + j] += xi * x[t * cols + j];
        }
      }
    }
    for (int i = 0; i < h.length; i++) {
      h[i] *= 2.0 / n;
    }
    return h;
  }

  /** ||X (W - P)^T||^2, the layer's output error on the calibration inputs. */
  static double outputError(float[] x, int n, float[] w, float[] p, int rows, int cols) {
    double sum = 0;
    for (int t = 0; t < n; t++) {
      for (int r = 0; r < rows; r++) {
        double y = 0;
        for (int c = 0; c < cols; c++) {
          y += (double) x[t * cols + c] * ((double) w[r * cols + c] - p[r * cols + c]);
        }
        sum += y * y;
      }
    }
    return sum;
  }

  private static SparseGpt fromCase(String spec) {
    String[] f = spec.split(",");
    String mode = f[0];
    double sparsity = Double.parseDouble(f[1]);
    NmPattern pattern =
        mode.equals("nm") ? new NmPattern(Integer.parseInt(f[2]), Integer.parseInt(f[3])) : null;
    Granularity g = mode.equals("block") ? Granularity.PER_TENSOR : Granularity.PER_OUTPUT_ROW;
    SparseGpt s =
        new SparseGpt(sparsity, pattern, g, Integer.parseInt(f[5]), Double.parseDouble(f[4]));
    int bits = Integer.parseInt(f[6]);
    int group = f.length > 8 ? Integer.parseInt(f[8]) : 0;
    return bits == 0 ? s : s.withQuantization(bits, f[7].equals("1"), group);
  }

  @Test
  void matchesPyTorchGoldenCaseByCase() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(GOLDEN)) {
      assertEquals("compactor-sparsegpt-golden", golden.metadata().get("magic"));
      int rows = (int) golden.info("W").shape()[0];
      int cols = (int) golden.info("W").shape()[1];
      int n = (int) golden.info("X").shape()[0];
      float[] w = golden.readFloats("W");
      float[] x = golden.readFloats("X");
      double[] h = hessian(x, n, cols);
      int cases = 0;
      for (Map.Entry<String, String> e : golden.metadata().entrySet()) {
        if (!e.getKey().startsWith("case.")) {
          continue;
        }
        String name = e.getKey().substring(5);
        SparseGpt.Result r = fromCase(e.getValue()).prune(w, rows, cols, h);
        float[] expected = golden.readFloats("pruned." + name);
        boolean quantized = !e.getValue().split(",")[6].equals("0");
        int maskMismatch = 0;
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
          // with quantization a kept weight may also round to 0
          boolean mismatch =
              quantized
                  ? r.mask().get(i) && expected[i] != 0f
                  : (expected[i] == 0f) != r.mask().get(i);
          if (mismatch) {
            maskMismatch++;
          }
          maxDiff = Math.max(maxDiff, Math.abs(expected[i] - r.weight()[i]));
        }
        assertEquals(0, maskMismatch, name + ": mask positions differing from the golden");
        assertTrue(maxDiff < 1e-4, name + ": max |Java - PyTorch| = " + maxDiff);
        assertEquals(1, r.deadColumns(), name + ": the golden has one dead input");
        if (quantized) {
          // the exported codes hold exactly the values the sweep computed with
          float[] decoded = r.quantized().dequantize();
          for (int i = 0; i < decoded.length; i++) {
            assertEquals(r.weight()[i], decoded[i], 0f, name + " element " + i);
          }
        } else {
          assertEquals(null, r.quantized(), name);
        }
        cases++;
      }
      assertEquals(9, cases);
    }
  }

  @Test
  void nmMasksHoldGroupByGroupAndUnstructuredIsExact() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(GOLDEN)) {
      int rows = (int) golden.info("W").shape()[0];
      int cols = (int) golden.info("W").shape()[1];
      int n = (int) golden.info("X").shape()[0];
      float[] w = golden.readFloats("W");
      double[] h = hessian(golden.readFloats("X"), n, cols);
      for (NmPattern p : new NmPattern[] {new NmPattern(2, 4), new NmPattern(4, 8)}) {
        SparseGpt.Result r =
            new SparseGpt(0, p, Granularity.PER_OUTPUT_ROW, 128, 0.01).prune(w, rows, cols, h);
        for (int row = 0; row < rows; row++) {
          for (int g = 0; g < cols; g += p.m()) {
            int zeros = 0;
            for (int j = g; j < g + p.m(); j++) {
              zeros += r.weight()[row * cols + j] == 0f ? 1 : 0;
            }
            assertTrue(
                zeros >= p.m() - p.n(),
                p + " row " + row + " group " + g + ": " + zeros + " zeros");
          }
        }
      }
      SparseGpt.Result half =
          new SparseGpt(0.5, null, Granularity.PER_OUTPUT_ROW, 128, 0.01).prune(w, rows, cols, h);
      for (int row = 0; row < rows; row++) {
        int zeros = 0;
        for (int j = 0; j < cols; j++) {
          zeros += half.weight()[row * cols + j] == 0f ? 1 : 0;
        }
        assertEquals(cols / 2, zeros, "row " + row);
      }
    }
  }

  @Test
  void beatsMagnitudeOnTheLayerOutputError() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(GOLDEN)) {
      int rows = (int) golden.info("W").shape()[0];
      int cols = (int) golden.info("W").shape()[1];
      int n = (int) golden.info("X").shape()[0];
      float[] w = golden.readFloats("W");
      float[] x = golden.readFloats("X");
      double[] h = hessian(x, n, cols);
      float[] abs = new float[w.length];
      for (int i = 0; i < w.length; i++) {
        abs[i] = Math.abs(w[i]);
      }
      BitSet[] magnitude = {
        MaskSelection.select(abs, rows, cols, 0.5, Granularity.PER_OUTPUT_ROW),
        MaskSelection.selectNm(abs, rows, cols, new NmPattern(2, 4))
      };
      SparseGpt[] sparse = {
        new SparseGpt(0.5, null, Granularity.PER_OUTPUT_ROW, 128, 0.01),
        new SparseGpt(0, new NmPattern(2, 4), Granularity.PER_OUTPUT_ROW, 128, 0.01)
      };
      for (int k = 0; k < 2; k++) {
        float[] m = w.clone();
        for (int i = magnitude[k].nextSetBit(0); i >= 0; i = magnitude[k].nextSetBit(i + 1)) {
          m[i] = 0;
        }
        double magErr = outputError(x, n, w, m, rows, cols);
        double sgErr = outputError(x, n, w, sparse[k].prune(w, rows, cols, h).weight(), rows, cols);
        assertTrue(
            sgErr < 0.5 * magErr, "case " + k + ": SparseGPT " + sgErr + " vs magnitude " + magErr);
      }
    }
  }

  @Test
  void refusesPatternsThatDoNotTileTheInputs() {
    SparseGpt p = new SparseGpt(0, new NmPattern(2, 4), Granularity.PER_OUTPUT_ROW, 128, 0.01);
    assertThrows(IllegalArgumentException.class, () -> p.prune(new float[6], 1, 6, new double[36]));
    assertThrows(
        IllegalArgumentException.class,
        () -> new SparseGpt(0, new NmPattern(2, 4), Granularity.PER_OUTPUT_ROW, 6, 0.01));
    assertThrows(IllegalArgumentException.class, () -> NmPattern.parse("4:4"));
    assertEquals(new NmPattern(2, 4), NmPattern.parse(" 2:4 "));
  }
}
