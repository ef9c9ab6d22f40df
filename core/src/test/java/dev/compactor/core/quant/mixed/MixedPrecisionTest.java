package dev.compactor.core.quant.mixed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sensitivity, allocation and the written plan on the tiny reference model (2 windows). */
class MixedPrecisionTest {

  private static final int SEQ = 32;

  @Test
  void measuresAllocatesAndWritesAPlan(@TempDir Path tmp) throws Exception {
    Path dir = TinyReferenceModel.shipped();
    List<int[]> windows;
    try (TextTokenizer tok = Tokenizers.forModel(dir)) {
      windows = CalibrationText.builtin().corpus().calibrationSamples(tok, 2, SEQ, 3);
    }
    List<QuantOption> opts = List.of(QuantOption.parse("int8"), QuantOption.parse("int2g32"));
    List<Sensitivity.Linear> linears;
    try (Transformer base = Transformer.load(dir, Device.cpu())) {
      linears = Sensitivity.measure(base, windows, opts);
      int layers = base.config().numLayers();
      assertEquals(7 * layers, linears.size());
      double int8 = 0;
      double int2 = 0;
      for (Sensitivity.Linear l : linears) {
        int rows = (int) (l.params() / colsOf(base, l));
        int cols = (int) colsOf(base, l);
        // asymmetric: one byte per int8 code plus fp16 scale and int8 zero per row
        assertEquals((long) rows * cols + 3L * rows, l.options().get(0).bytes(), l.fullName());
        // 2-bit codes packed 4 a byte, a 32-wide group: fp16 scale + 2-bit zero (packed)
        long groups = (long) rows * (cols / 32);
        assertEquals(
            (long) rows * cols / 4 + 2 * groups + groups / 4,
            l.options().get(1).bytes(),
            l.fullName());
        int8 += l.options().get(0).sensitivity();
        int2 += l.options().get(1).sensitivity();
      }
      assertTrue(int2 > 100 * int8, "int2 " + int2 + " vs int8 " + int8);

      // independent check of one measurement: quantize a copy in place, KL in plain Java
      Sensitivity.Linear probe = linears.get(6);
      int[] choice = new int[linears.size()];
      try (Transformer copy = Transformer.load(dir, Device.cpu())) {
        int[] only = new int[1];
        only[0] = 1;
        MixedPrecision.apply(copy, List.of(probe), only, opts);
        double kl = plainKl(base, copy, windows);
        assertEquals(kl, probe.options().get(1).sensitivity(), 1e-3 * kl + 1e-6);
      }

      long min = MixedPrecision.bytes(linears, new int[linears.size()]);
      java.util.Arrays.fill(choice, 1);
      long small = MixedPrecision.bytes(linears, choice);
      long budget = (min + small) / 2;
      List<List<Allocation.Option>> options =
          linears.stream().map(Sensitivity.Linear::options).toList();
      Allocation.Plan plan = Allocation.solve(options, budget);
      assertTrue(plan.bytes() <= budget);

      Path out = tmp.resolve("mixed");
      try (Transformer m = Transformer.load(dir, Device.cpu())) {
        MixedPrecision.apply(m, linears, plan.choice(), opts);
        MixedPrecision.write(
            dir, m, MixedPrecision.quantizationConfig(linears, plan.choice(), opts), out);
        try (Transformer back = Transformer.load(out, Device.cpu())) {
          String name = linears.get(0).fullName();
          assertArrayEquals(
              m.parameters().get(name).toFloatArray(), back.parameters().get(name).toFloatArray());
        }
      }
      JsonNode qc = ModelDirectory.open(out).configJson().get("quantization_config");
      JsonNode listed = qc.get(MixedPrecision.BLOCK).get("linears");
      assertEquals(linears.size(), listed.size());
      assertEquals(plan.bytes(), qc.get("quantized_weight_bytes").asLong());
      for (int i = 0; i < linears.size(); i++) {
        assertEquals(opts.get(plan.choice()[i]).id(), listed.get(i).get("option").asText());
      }
    }
  }

  private static long colsOf(Transformer t, Sensitivity.Linear l) {
    return t.parameters().get(l.fullName()).getShape().get(1);
  }

  private static double plainKl(Transformer p, Transformer q, List<int[]> windows) {
    double sum = 0;
    long n = 0;
    try (NDManager m = NDManager.newBaseManager()) {
      for (int[] w : windows) {
        NDArray in = m.create(w, new Shape(1, w.length));
        float[] a = p.logits(m, in).toFloatArray();
        float[] b = q.logits(m, in).toFloatArray();
        int v = p.vocabSize();
        for (int t = 0; t < w.length; t++) {
          double[] la = logSoftmax(a, t * v, v);
          double[] lb = logSoftmax(b, t * v, v);
          for (int k = 0; k < v; k++) {
            sum += Math.exp(la[k]) * (la[k] - lb[k]);
          }
          n++;
        }
      }
    }
    return sum / n;
  }

  private static double[] logSoftmax(float[] x, int off, int v) {
    double max = Double.NEGATIVE_INFINITY;
    for (int k = 0; k < v; k++) {
      max = Math.max(max, x[off + k]);
    }
    double s = 0;
    for (int k = 0; k < v; k++) {
      s += Math.exp(x[off + k] - max);
    }
    double lse = max + Math.log(s);
    double[] out = new double[v];
    for (int k = 0; k < v; k++) {
      out[k] = x[off + k] - lse;
    }
    return out;
  }
}
