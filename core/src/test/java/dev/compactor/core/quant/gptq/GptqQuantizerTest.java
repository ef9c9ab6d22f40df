package dev.compactor.core.quant.gptq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** GPTQ against a column-by-column reference, a PyTorch golden file, and RTN. */
class GptqQuantizerTest {

  /** Inputs whose channels are correlated and of very unequal energy, as real activations are. */
  static float[] correlatedInputs(int n, int cols, long seed) {
    Random r = new Random(seed);
    double[][] mix = new double[cols][cols];
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        mix[i][j] = (i == j ? 1 : 0) + 0.3 * r.nextGaussian();
      }
    }
    double[] energy = new double[cols];
    for (int j = 0; j < cols; j++) {
      energy[j] = Math.exp(r.nextGaussian());
    }
    float[] x = new float[n * cols];
    double[] z = new double[cols];
    for (int t = 0; t < n; t++) {
      for (int i = 0; i < cols; i++) {
        z[i] = r.nextGaussian();
      }
      for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int i = 0; i < cols; i++) {
          s += z[i] * mix[i][j];
        }
        x[t * cols + j] = (float) (s * energy[j]);
      }
    }
    return x;
  }

  static float[] gaussian(int n, double std, long seed) {
    Random r = new Random(seed);
    float[] w = new float[n];
    for (int i = 0; i < n; i++) {
      w[i] = (float) (r.nextGaussian() * std);
    }
    return w;
  }

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

  /** ||X (W - Q)^T||^2. */
  static double outputError(float[] x, int n, float[] w, float[] q, int rows, int cols) {
    double total = 0;
    for (int t = 0; t < n; t++) {
      for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int j = 0; j < cols; j++) {
          s += x[t * cols + j] * ((double) w[r * cols + j] - q[r * cols + j]);
        }
        total += s * s;
      }
    }
    return total;
  }

  @Test
  void blockedAgreesWithColumnByColumnReference() {
    int rows = 12;
    int cols = 160;
    int n = 200;
    float[] x = correlatedInputs(n, cols, 1);
    for (int t = 0; t < n; t++) {
      x[t * cols + 7] = 0;
    }
    double[] h = hessian(x, n, cols);
    float[] w = gaussian(rows * cols, 0.05, 2);
    for (GptqConfig c :
        new GptqConfig[] {
          new GptqConfig(4, true, 32, 0.01, 64, GptqConfig.ActOrder.NONE),
          new GptqConfig(4, false, 32, 0.01, 128, GptqConfig.ActOrder.GROUP),
          new GptqConfig(4, true, 32, 0.01, 96, GptqConfig.ActOrder.WEIGHT),
          new GptqConfig(4, false, 0, 0.01, 32, GptqConfig.ActOrder.NONE),
          new GptqConfig(8, true, 32, 0.01, 32, GptqConfig.ActOrder.GROUP)
        }) {
      GptqResult blocked = new GptqQuantizer(c).quantize(w, rows, cols, h);
      float[] ref = ReferenceGptq.quantize(c, w, rows, cols, h);
      assertArrayEquals(ref, blocked.dequantized(), 1e-4f, c.toString());
      assertEquals(1, blocked.deadColumns());
      for (int r = 0; r < rows; r++) {
        assertEquals(0f, blocked.dequantized()[r * cols + 7], c.toString());
      }
    }
  }

  @Test
  void prunedWeightsStayExactlyZeroInEveryColumnOrder() {
    int rows = 12;
    int cols = 128;
    int n = 200;
    float[] x = correlatedInputs(n, cols, 3);
    double[] h = hessian(x, n, cols);
    float[] w = gaussian(rows * cols, 0.05, 4);
    java.util.Random rnd = new java.util.Random(5);
    int zeros = 0;
    for (int i = 0; i < w.length; i++) {
      if (rnd.nextDouble() < 0.3) {
        w[i] = 0f;
        zeros++;
      }
    }
    for (GptqConfig c :
        new GptqConfig[] {
          new GptqConfig(4, true, 32, 0.01, 64, GptqConfig.ActOrder.NONE),
          new GptqConfig(4, false, 32, 0.01, 128, GptqConfig.ActOrder.GROUP),
          new GptqConfig(4, false, 32, 0.01, 96, GptqConfig.ActOrder.WEIGHT),
          new GptqConfig(4, false, 0, 0.01, 32, GptqConfig.ActOrder.NONE),
          new GptqConfig(8, false, 32, 0.01, 32, GptqConfig.ActOrder.GROUP)
        }) {
      GptqResult r = new GptqQuantizer(c).quantize(w, rows, cols, h);
      float[] q = r.dequantized();
      int kept = 0;
      for (int i = 0; i < w.length; i++) {
        if (w[i] == 0f) {
          assertEquals(0f, q[i], c + " at " + i);
          kept++;
        }
      }
      assertEquals(zeros, kept);
      // the error feedback still works: better than plain RTN of the same grid on the outputs
      float[] rtn =
          new dev.compactor.core.quant.RtnQuantizer(c.bits(), c.symmetric(), c.groupSize())
              .quantize(w, rows, cols)
              .dequantize();
      assertTrue(
          outputError(x, n, w, q, rows, cols) < outputError(x, n, w, rtn, rows, cols),
          c.toString());
    }
  }

  @Test
  void matchesPyTorchGolden() throws Exception {
    Path file = Path.of("src/test/resources/golden/gptq/gptq_golden.safetensors");
    try (SafetensorsFile golden = SafetensorsFile.open(file)) {
      assertEquals("compactor-gptq-golden", golden.metadata().get("magic"));
      int rows = (int) golden.info("W").shape()[0];
      int cols = (int) golden.info("W").shape()[1];
      int n = (int) golden.info("X").shape()[0];
      float[] w = golden.readFloats("W");
      double[] h = hessian(golden.readFloats("X"), n, cols);
      int cases = 0;
      for (Map.Entry<String, String> e : golden.metadata().entrySet()) {
        if (!e.getKey().startsWith("case.")) {
          continue;
        }
        String name = e.getKey().substring(5);
        String[] f = e.getValue().split(",");
        GptqConfig c =
            new GptqConfig(
                Integer.parseInt(f[0]),
                f[1].equals("1"),
                Integer.parseInt(f[2]),
                Double.parseDouble(f[4]),
                Integer.parseInt(f[5]),
                GptqConfig.ActOrder.valueOf(f[3].toUpperCase(java.util.Locale.ROOT)));
        GptqResult got = new GptqQuantizer(c).quantize(w, rows, cols, h);
        float[] expected = golden.readFloats("deq." + name);
        int mismatches = 0;
        for (int i = 0; i < expected.length; i++) {
          if (Math.abs(expected[i] - got.dequantized()[i]) > 1e-5f) {
            mismatches++;
          }
        }
        assertEquals(0, mismatches, name + ": elements differing from the PyTorch golden");
        if (golden.contains("gidx." + name)) {
          IntBuffer gidx = golden.raw("gidx." + name).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
          int[] expectedIdx = new int[cols];
          gidx.get(expectedIdx);
          assertArrayEquals(expectedIdx, got.weight().gIdx(), name);
        } else {
          assertNull(got.weight().gIdx(), name);
        }
        cases++;
      }
      assertEquals(6, cases);
    }
  }

  @Test
  void beatsRtnOnLayerOutputsAt4BitsG128() {
    int rows = 64;
    int cols = 256;
    int n = 512;
    float[] x = correlatedInputs(n, cols, 3);
    double[] h = hessian(x, n, cols);
    float[] w = gaussian(rows * cols, 0.05, 4);
    float[] rtn = new RtnQuantizer(4, true, 128).quantize(w, rows, cols).dequantize();
    double rtnError = outputError(x, n, w, rtn, rows, cols);
    for (GptqConfig.ActOrder mode : GptqConfig.ActOrder.values()) {
      GptqResult gptq =
          new GptqQuantizer(GptqConfig.int4(128).withActOrder(mode)).quantize(w, rows, cols, h);
      double gptqError = outputError(x, n, w, gptq.dequantized(), rows, cols);
      assertTrue(
          gptqError < 0.7 * rtnError,
          mode + ": GPTQ error " + gptqError + " should be well below RTN's " + rtnError);
    }
  }

  @Test
  void diagonalHessianIsExactlyRtn() {
    int rows = 8;
    int cols = 128;
    float[] w = gaussian(rows * cols, 0.05, 5);
    double[] h = new double[cols * cols];
    for (int j = 0; j < cols; j++) {
      h[j * cols + j] = 1 + j;
    }
    for (int bits : new int[] {2, 3, 4}) {
      for (boolean sym : new boolean[] {true, false}) {
        QuantizedTensor rtn = new RtnQuantizer(bits, sym, 32).quantize(w, rows, cols);
        GptqResult gptq =
            new GptqQuantizer(new GptqConfig(bits, sym, 32, 0.01, 128, GptqConfig.ActOrder.NONE))
                .quantize(w, rows, cols, h);
        QuantizedLinear expected = QuantizedLinear.of(rtn);
        assertArrayEquals(expected.codes(), gptq.weight().codes());
        assertArrayEquals(expected.scales(), gptq.weight().scales());
        if (!sym) {
          assertNotNull(gptq.weight().zeros());
          assertArrayEquals(expected.zeros(), gptq.weight().zeros());
        }
        assertArrayEquals(rtn.dequantize(), gptq.dequantized());
      }
    }
  }

  @Test
  void blockedCholeskyReproducesItsInput() {
    // not a multiple of the block size (64), and wide enough that the first blocks' trailing
    // updates run in two row chunks (512 rows each)
    int n = 700;
    float[] x = correlatedInputs(400, n, 9);
    double[] a = hessian(x, 400, n);
    for (int j = 0; j < n; j++) {
      a[j * n + j] += 0.1;
    }
    double[] l = ObsHessian.cholesky(a.clone(), n);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) {
          s += l[i * n + k] * l[j * n + k];
        }
        assertEquals(a[i * n + j], s, 1e-9 * Math.abs(a[i * n + i]), i + "," + j);
        if (j > i) {
          assertEquals(0.0, l[i * n + j]);
        }
      }
    }
    // U^T U = H^-1, with U stored in the argument's own array
    double[] h = a.clone();
    double[] u = ObsHessian.upperCholeskyOfInverse(h, n);
    assertSame(h, u);
    double[] inv = new double[n * n];
    for (int k = 0; k < n; k++) {
      for (int i = k; i < n; i++) {
        double uki = u[k * n + i];
        for (int j = k; j < n; j++) {
          inv[i * n + j] += uki * u[k * n + j];
        }
      }
    }
    for (int i = 0; i < n; i += 7) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) {
          s += inv[i * n + k] * a[k * n + j];
        }
        assertEquals(i == j ? 1.0 : 0.0, s, 1e-8, "(U^T U H) " + i + "," + j);
      }
    }
  }

  @Test
  void rejectsBadInput() {
    GptqQuantizer q = new GptqQuantizer(GptqConfig.int4(32));
    assertThrows(
        IllegalArgumentException.class, () -> q.quantize(new float[10], 2, 4, new double[16]));
    assertThrows(
        IllegalArgumentException.class, () -> q.quantize(new float[64], 2, 32, new double[16]));
    double[] nan = new double[32 * 32];
    nan[3] = Double.NaN;
    assertThrows(IllegalArgumentException.class, () -> q.quantize(new float[64], 2, 32, nan));
    double[] negative = new double[32 * 32];
    for (int j = 0; j < 32; j++) {
      negative[j * 32 + j] = j == 0 ? -5 : 1;
    }
    assertThrows(ArithmeticException.class, () -> q.quantize(new float[64], 2, 32, negative));
    assertThrows(
        IllegalArgumentException.class,
        () -> new GptqConfig(4, true, 64, 0.01, 96, GptqConfig.ActOrder.NONE));
    assertThrows(
        UnsupportedOperationException.class,
        () -> new GptqConfig(5, true, 64, 0.01, 128, GptqConfig.ActOrder.NONE));
  }
}
