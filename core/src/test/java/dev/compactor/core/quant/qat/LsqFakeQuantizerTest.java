package dev.compactor.core.quant.qat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.export.QuantizedLinear;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class LsqFakeQuantizerTest {

  private static final Path GOLDEN =
      Path.of("src/test/resources/golden/qat/lsq_golden.safetensors");

  @Test
  void stopGradientCutsTheGraphOnThePyTorchEngine() {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray x = m.create(new float[] {1f, -2f, 3f});
      x.setRequiresGradient(true);
      try (GradientCollector tape = Engine.getInstance().newGradientCollector()) {
        // d/dx (stopgrad(x) * x) = stopgrad(x) = x, where the full product would give 2x
        tape.backward(x.stopGradient().mul(x).sum());
      }
      assertArrayEquals(new float[] {1f, -2f, 3f}, x.getGradient().toFloatArray(), 0f);
    }
  }

  @Test
  void forwardAndGradientsMatchTheHandWrittenTorchLsq() throws Exception {
    try (SafetensorsFile golden = SafetensorsFile.open(GOLDEN);
        NDManager m = NDManager.newBaseManager()) {
      assertEquals("compactor-lsq-golden", golden.metadata().get("magic"));
      long[] ws = golden.info("w").shape();
      float[] w = golden.readFloats("w");
      float[] x = golden.readFloats("x");
      float[] r = golden.readFloats("r");
      int cases = 0;
      for (Map.Entry<String, String> e : golden.metadata().entrySet()) {
        if (!e.getKey().startsWith("case.")) {
          continue;
        }
        String name = e.getKey().substring(5);
        String[] p = e.getValue().split(",");
        LsqFakeQuantizer fq = new LsqFakeQuantizer(Integer.parseInt(p[0]), Integer.parseInt(p[1]));
        long[] ss = golden.info("s." + name).shape();
        try (NDManager c = m.newSubManager()) {
          NDArray wa = c.create(w, new Shape(ws));
          NDArray sa = c.create(golden.readFloats("s." + name), new Shape(ss));
          NDArray xa = c.create(x, new Shape(golden.info("x").shape()));
          NDArray ra = c.create(r, new Shape(golden.info("r").shape()));
          wa.setRequiresGradient(true);
          sa.setRequiresGradient(true);
          float[] wHat;
          try (GradientCollector tape = Engine.getInstance().newGradientCollector()) {
            NDArray q = fq.apply(wa, sa, c);
            wHat = q.toFloatArray();
            tape.backward(xa.matMul(q.transpose()).mul(ra).sum());
          }
          assertArrayEquals(golden.readFloats("w_hat." + name), wHat, 1e-7f, name + ": w_hat");
          assertClose(golden.readFloats("grad_w." + name), wa.getGradient(), name + ": grad w");
          assertClose(golden.readFloats("grad_s." + name), sa.getGradient(), name + ": grad s");
        }
        cases++;
      }
      assertEquals(5, cases);
    }
  }

  private static void assertClose(float[] expected, NDArray actual, String what) {
    float[] a = actual.toFloatArray();
    assertEquals(expected.length, a.length, what);
    for (int i = 0; i < a.length; i++) {
      float tol = 1e-5f * Math.max(1f, Math.abs(expected[i]));
      assertEquals(expected[i], a[i], tol, what + " at " + i);
    }
  }

  @Test
  void aWeightOnTheGridWithItsStepIsAFixedPoint() {
    int rows = 4;
    int cols = 64;
    LsqFakeQuantizer fq = new LsqFakeQuantizer(3, 32);
    Random rnd = new Random(7);
    float[] s = new float[rows * 2];
    float[] w = new float[rows * cols];
    for (int i = 0; i < s.length; i++) {
      s[i] = 0.01f + 0.02f * rnd.nextFloat();
    }
    for (int i = 0; i < w.length; i++) {
      w[i] = (rnd.nextInt(8) - 4) * s[(i / cols) * 2 + (i % cols) / 32];
    }
    try (NDManager m = NDManager.newBaseManager()) {
      float[] out =
          fq.apply(m.create(w, new Shape(rows, cols)), m.create(s, new Shape(rows, 2)), m)
              .toFloatArray();
      assertArrayEquals(w, out, 0f);
    }
    QuantizedLinear q = fq.export(w, s, rows, cols);
    assertArrayEquals(w, q.dequantize(), 0f);
  }

  @Test
  void exportedCodesAreRoundOfClampAndMatchRtnAtTheAbsmaxSteps() {
    int rows = 6;
    int cols = 128;
    Random rnd = new Random(3);
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.05f;
    }
    for (int bits : new int[] {2, 3, 4, 8}) {
      LsqFakeQuantizer fq = new LsqFakeQuantizer(bits, 32);
      float[] s = fq.absmaxSteps(w, rows, cols);
      for (int i = 0; i < s.length; i++) {
        s[i] *= 0.5f + rnd.nextFloat(); // some clamp, some do not
      }
      QuantizedLinear q = fq.export(w, s, rows, cols);
      int half = 1 << (bits - 1);
      for (int i = 0; i < w.length; i++) {
        float step = s[(i / cols) * 4 + (i % cols) / 32];
        double expected = Math.rint(Math.max(-half, Math.min(half - 1, w[i] / step)));
        assertEquals(expected, q.code(i / cols, i % cols) - half, 0, "bits " + bits + " at " + i);
      }
      // at the absmax steps the grid is RTN's symmetric grid exactly
      float[] rtnSteps = fq.absmaxSteps(w, rows, cols);
      QuantizedTensor rtn = new RtnQuantizer(bits, true, 32).quantize(w, rows, cols);
      assertArrayEquals(rtn.scales(), rtnSteps, 0f);
      assertArrayEquals(rtn.dequantize(), fq.export(w, rtnSteps, rows, cols).dequantize(), 0f);
    }
  }

  @Test
  void refusesANonPositiveStepAtExport() {
    LsqFakeQuantizer fq = new LsqFakeQuantizer(4, 0);
    IllegalStateException e =
        assertThrows(
            IllegalStateException.class,
            () -> fq.export(new float[] {1f, 2f}, new float[] {-0.1f}, 1, 2));
    assertTrue(e.getMessage().contains("lower the learning rate"), e.getMessage());
  }

  @Test
  void ggmlQ4_0KeepsExactlyTheBlocksHoldingCodeMinus8() {
    int rows = 2;
    int cols = 64;
    byte[] codes = new byte[rows * cols];
    Random rnd = new Random(5);
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) (1 + rnd.nextInt(15)); // signed -7..7: no block holds -8
    }
    codes[3] = 0; // row 0, block 0 holds -8
    codes[cols + 40] = 0; // row 1, block 1 holds -8
    float[] steps = {0.015625f, 0.03125f, 0.0078125f, 0.0625f}; // fp16-exact
    QuantizedLinear q = new QuantizedLinear(rows, cols, 4, true, 32, codes, steps, null, null);
    assertEquals(0.5, QuantizationAwareTraining.ggmlExactBlockFraction(Map.of("w", q)), 0);
    float[] w = q.dequantize();
    byte[] blocks = new byte[rows * 2 * dev.compactor.core.gguf.BlockQ4_0.BLOCK_BYTES];
    float[] back = new float[w.length];
    for (int r = 0; r < rows; r++) {
      int off = r * 2 * dev.compactor.core.gguf.BlockQ4_0.BLOCK_BYTES;
      dev.compactor.core.gguf.BlockQ4_0.quantizeRowReference(w, r * cols, cols, blocks, off);
      dev.compactor.core.gguf.BlockQ4_0.dequantizeRow(blocks, off, back, r * cols, cols);
    }
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < 2; b++) {
        boolean exact = true;
        for (int c = b * 32; c < b * 32 + 32; c++) {
          exact &= back[r * cols + c] == w[r * cols + c];
        }
        assertEquals((r == 0 && b == 0) || (r == 1 && b == 1), exact, "row " + r + " block " + b);
      }
    }
  }
}
