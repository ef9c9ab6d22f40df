package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.PruningSpec.Method;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

class WandaPrunerTest {

  private static final Logger LOG = LoggerFactory.getLogger(WandaPrunerTest.class);
  private static final String[] QKV = {"q_proj", "k_proj", "v_proj"};

  @Test
  void wandaKeepsWeightsOnLoudChannelsAndReconstructsOutputsBetterThanMagnitude(@TempDir Path tmp)
      throws Exception {
    List<int[]> windows = new ArrayList<>();
    Random rnd = new Random(1);
    for (int w = 0; w < 8; w++) {
      int[] ids = new int[16];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = rnd.nextInt(67);
      }
      windows.add(ids);
    }
    Path in = tmp.resolve("in");
    InputNormCollector norms;
    Map<String, float[]> inputs = new HashMap<>();
    long tokens = 8L * 16;
    try (Transformer model = Transformer.randomInit(TestModels.tinyLlama(2), 3, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      // Outlier features, as LLMs have them: a few channels of the attention input are ~20x louder.
      float[] gain = new float[32];
      Arrays.fill(gain, 1f);
      for (int j : new int[] {2, 9, 17, 30}) {
        gain[j] = 20f;
      }
      model.parameters().get("model.layers.0.input_layernorm.weight").set(FloatBuffer.wrap(gain));
      TestModels.write(model, in, DType.F32);
      norms = WandaPruner.calibrate(model::logits, m, windows, 3);
      // The first linear inputs of every layer, captured whole for the reconstruction check.
      List<float[]> rows = new ArrayList<>();
      for (int[] w : windows) {
        model.logits(
            m,
            m.create(w, new ai.djl.ndarray.types.Shape(1, w.length)),
            (layer, name, x) -> {
              if (layer == 0 && name.equals("self_attn.q_proj")) {
                rows.add(x.toFloatArray());
              }
            });
      }
      float[] x = new float[rows.size() * 16 * 32];
      for (int i = 0; i < rows.size(); i++) {
        System.arraycopy(rows.get(i), 0, x, i * 16 * 32, 16 * 32);
      }
      inputs.put("layer0", x);
    }
    assertEquals(tokens, norms.tokens(0, PruningSpec.Linear.Q_PROJ));

    PruningReport wanda =
        new WandaPruner(PruningSpec.of(Method.WANDA, 0.5)).prune(in, tmp.resolve("wanda"), norms);
    PruningReport magnitude =
        new MagnitudePruner(PruningSpec.of(Method.MAGNITUDE, 0.5))
            .prune(in, tmp.resolve("magnitude"));
    assertEquals(0.5, wanda.overallSparsity(), 1e-12);
    // The stage's one-call path calibrates on a layer-by-layer streamed model: same masks.
    new WandaPruner(PruningSpec.of(Method.WANDA, 0.5))
        .prune(in, tmp.resolve("streamed"), windows, 3, Device.cpu());
    try (TensorSource a = Checkpoints.open(tmp.resolve("wanda"));
        TensorSource b = Checkpoints.open(tmp.resolve("streamed"))) {
      for (String name : a.names()) {
        assertArrayEquals(zeros(a.readFloats(name)), zeros(b.readFloats(name)), name);
      }
    }
    assertEquals(tokens, wanda.calibrationTokens());

    float[] x = inputs.get("layer0");
    int t = x.length / 32;
    float[] inputNorm = new float[32];
    for (int j = 0; j < 32; j++) {
      double s = 0;
      for (int r = 0; r < t; r++) {
        s += (double) x[r * 32 + j] * x[r * 32 + j];
      }
      inputNorm[j] = (float) Math.sqrt(s);
    }
    try (TensorSource dense = Checkpoints.open(in);
        TensorSource w = Checkpoints.open(tmp.resolve("wanda"));
        TensorSource mg = Checkpoints.open(tmp.resolve("magnitude"))) {
      for (String p : QKV) {
        String name = "model.layers.0.self_attn." + p + ".weight";
        long[] shape = dense.info(name).shape();
        int rows = (int) shape[0];
        float[] original = dense.readFloats(name);
        float[] wandaW = w.readFloats(name);
        float[] magW = mg.readFloats(name);
        assertArrayEquals(referenceWanda(original, rows, 32, inputNorm, 0.5), wandaW, 0f, name);
        assertTrue(!Arrays.equals(wandaW, magW), name + ": Wanda's mask must differ");
        double errWanda = reconstructionError(x, t, original, wandaW, rows);
        double errMag = reconstructionError(x, t, original, magW, rows);
        LOG.info("{}: ||WX - W'X||_F wanda {} magnitude {}", name, errWanda, errMag);
        assertTrue(errWanda < errMag, name + ": wanda " + errWanda + " vs magnitude " + errMag);
      }
    }
  }

  /** Per row, zero the k smallest |w_ij| * norm_j, lower index first on ties. */
  static float[] referenceWanda(float[] w, int rows, int cols, float[] norm, double s) {
    float[] score = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      score[i] = Math.abs(w[i]) * norm[i % cols];
    }
    float[] out = w.clone();
    int k = (int) Math.round(s * cols);
    for (int r = 0; r < rows; r++) {
      Integer[] idx = new Integer[cols];
      for (int c = 0; c < cols; c++) {
        idx[c] = c;
      }
      final int row = r;
      Arrays.sort(idx, (a, b) -> Float.compare(score[row * cols + a], score[row * cols + b]));
      for (int i = 0; i < k; i++) {
        out[r * cols + idx[i]] = 0f;
      }
    }
    return out;
  }

  /** ||X W^T - X W'^T||_F for X [t, in=32], W [rows, 32]. */
  static double reconstructionError(float[] x, int t, float[] w, float[] pruned, int rows) {
    double sum = 0;
    for (int r = 0; r < t; r++) {
      for (int o = 0; o < rows; o++) {
        double d = 0;
        for (int j = 0; j < 32; j++) {
          d += (double) x[r * 32 + j] * (w[o * 32 + j] - pruned[o * 32 + j]);
        }
        sum += d * d;
      }
    }
    return Math.sqrt(sum);
  }

  private static boolean[] zeros(float[] v) {
    boolean[] z = new boolean[v.length];
    for (int i = 0; i < v.length; i++) {
      z[i] = v[i] == 0f;
    }
    return z;
  }
}
