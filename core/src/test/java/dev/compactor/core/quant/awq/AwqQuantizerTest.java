package dev.compactor.core.quant.awq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LinearGroups;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AWQ's scale search against RTN, clipping, and the exactness of folding the scales. */
class AwqQuantizerTest {

  @TempDir Path dir;

  /** Inputs with a few outlier channels (50x larger), as seen in LLM activations. */
  static float[] outlierInputs(int n, int cols, long seed) {
    Random r = new Random(seed);
    float[] x = new float[n * cols];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < cols; j++) {
        double scale = j % 37 == 3 ? 50 : 1;
        x[t * cols + j] = (float) (r.nextGaussian() * scale);
      }
    }
    return x;
  }

  static double[] gram(float[] x, int n, int cols) {
    double[] g = new double[cols * cols];
    for (int t = 0; t < n; t++) {
      for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
          g[i * cols + j] += (double) x[t * cols + i] * x[t * cols + j];
        }
      }
    }
    return g;
  }

  static double[] meanAbs(float[] x, int n, int cols) {
    double[] m = new double[cols];
    for (int t = 0; t < n; t++) {
      for (int j = 0; j < cols; j++) {
        m[j] += Math.abs(x[t * cols + j]) / n;
      }
    }
    return m;
  }

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

  static float[] gaussian(int n, long seed) {
    Random r = new Random(seed);
    float[] w = new float[n];
    for (int i = 0; i < n; i++) {
      w[i] = (float) (r.nextGaussian() * 0.05);
    }
    return w;
  }

  @Test
  void scaleSearchBeatsRtnOnOutlierChannels() {
    int rows = 48;
    int cols = 256;
    int n = 400;
    float[] x = outlierInputs(n, cols, 1);
    float[] w = gaussian(rows * cols, 2);
    for (boolean sym : new boolean[] {true, false}) {
      AwqQuantizer awq = new AwqQuantizer(new AwqConfig(4, sym, 128, 20, false, 20, 0.5));
      AwqQuantizer.ScaleSearch search =
          awq.searchScales(
              List.of(w), new int[] {rows}, cols, gram(x, n, cols), meanAbs(x, n, cols));
      assertTrue(search.alpha() > 0, "some activation awareness should help: " + search.alpha());
      float[] q =
          awq.quantize(AwqQuantizer.scaleColumns(w, rows, cols, search.scales()), rows, cols)
              .dequantize();
      for (int i = 0; i < q.length; i++) {
        q[i] /= search.scales()[i % cols];
      }
      double awqError = outputError(x, n, w, q, rows, cols);
      double rtnError =
          outputError(
              x,
              n,
              w,
              new RtnQuantizer(4, sym, 128).quantize(w, rows, cols).dequantize(),
              rows,
              cols);
      assertTrue(awqError < 0.8 * rtnError, "AWQ " + awqError + " vs RTN " + rtnError);
      // the search's own error for alpha = 0 is RTN's error, measured through the Gram matrix
      assertEquals(rtnError, search.errors()[0], 1e-3 * rtnError);
    }
  }

  @Test
  void clippingNeverHurtsOnCalibrationData() {
    int rows = 16;
    int cols = 128;
    int n = 300;
    Random r = new Random(3);
    float[] x = new float[n * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    float[] w = gaussian(rows * cols, 4);
    for (int i = 0; i < w.length; i += 29) {
      w[i] *= 8; // heavy-tailed weights: clipping pays off
    }
    AwqQuantizer awq = new AwqQuantizer(AwqConfig.int4(32, false));
    float[] clipped = awq.clip(w, rows, cols, gram(x, n, cols));
    double clippedError =
        outputError(x, n, w, awq.quantize(clipped, rows, cols).dequantize(), rows, cols);
    double plainError = outputError(x, n, w, awq.quantize(w, rows, cols).dequantize(), rows, cols);
    assertTrue(clippedError < plainError, clippedError + " vs " + plainError);
  }

  @Test
  void foldedScalesComputeTheSameFunction() throws Exception {
    for (ModelConfig config :
        new ModelConfig[] {
          ModelConfig.llama(40, 32, 64, 2, 4, 4, 32), ModelConfig.llama(40, 32, 64, 2, 4, 2, 32)
        }) {
      Path modelDir = dir.resolve("m" + config.numKvHeads());
      List<int[]> samples = new ArrayList<>();
      Random r = new Random(5);
      for (int i = 0; i < 3; i++) {
        int[] s = new int[16];
        for (int t = 0; t < s.length; t++) {
          s[t] = r.nextInt(40);
        }
        samples.add(s);
      }
      try (Transformer model = Transformer.randomInit(config, 11, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        // Non-trivial norms, so that folding into them is really exercised.
        for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
          if (e.getKey().endsWith("layernorm.weight")) {
            float[] v = e.getValue().toFloatArray();
            for (int i = 0; i < v.length; i++) {
              v[i] = (float) (0.5 + r.nextDouble());
            }
            e.getValue().set(v);
          }
        }
        model.save(modelDir, DType.F32, Map.of());
        NDArray tokens = m.create(new int[] {1, 5, 9, 2, 33, 7, 0, 12}, new Shape(1, 8));
        float[] before = model.logits(m, tokens).toFloatArray();
        List<Map<String, float[]>> scaled = new ArrayList<>();
        try (TensorSource source = Checkpoints.open(modelDir)) {
          new CalibrationCollector(
                  config,
                  layer -> LinearGroups.oneStage(config, layer),
                  CalibrationCollector.Propagation.ORIGINAL,
                  true,
                  2)
              .run(
                  source,
                  samples,
                  new AwqLayerQuantizer(
                      config,
                      AwqConfig.int4(32, true),
                      false,
                      (layer, weights, quantized) -> scaled.add(weights)));
        }
        boolean changed = false;
        for (int i = 0; i < config.numLayers(); i++) {
          for (Map.Entry<String, float[]> e : scaled.get(i).entrySet()) {
            NDArray p = model.parameters().get(model.layerPrefix(i) + e.getKey());
            changed |= !java.util.Arrays.equals(p.toFloatArray(), e.getValue());
            p.set(e.getValue());
          }
        }
        assertTrue(changed, "the scales should change the weights");
        float[] after = model.logits(m, tokens).toFloatArray();
        assertArrayEquals(before, after, 1e-4f, config.toString());
      }
    }
  }
}
