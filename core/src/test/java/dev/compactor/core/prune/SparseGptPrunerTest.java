package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SparseGPT end to end on the shipped tiny reference model (hidden 128, 4 layers): sequential
 * calibration, pruned checkpoint, exact sparsity per row and per N:M group, and perplexity against
 * magnitude and Wanda at 50 % and 2:4.
 */
class SparseGptPrunerTest {

  private static final Logger LOG = LoggerFactory.getLogger(SparseGptPrunerTest.class);
  private static final int SEQ = 128;
  private static final int EVAL_BYTES = 12_000;

  @TempDir static Path tmp;
  static Path dense;
  static List<int[]> calibration;
  static String heldOut;

  @BeforeAll
  static void setUp() throws Exception {
    dense = TinyReferenceModel.shipped();
    Corpus corpus = Corpus.europarlEnglish();
    calibration = corpus.calibrationSamples(new ByteTokenizer(), 32, SEQ, 7);
    String text = corpus.testText();
    heldOut = text.substring(0, Math.min(text.length(), EVAL_BYTES));
  }

  private static double perplexity(Path dir) throws Exception {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      return new PerplexityEvaluator(SEQ, SEQ, 8)
          .evaluate(m, new ByteTokenizer(), heldOut, ProgressListener.NONE)
          .perplexity();
    }
  }

  private static PruningReport prune(PruningSpec spec, Path out) throws Exception {
    return Pruning.run(spec, dense, out, () -> calibration, Device.cpu());
  }

  @Test
  void halfSparsityIsExactInEveryRowAndKeptTensorsAreCopied() throws Exception {
    Path out = tmp.resolve("sparsegpt-50");
    PruningReport r = prune(PruningSpec.of(Method.SPARSEGPT, 0.5), out);
    ModelConfig config = ModelConfig.read(dense);
    assertEquals(7 * config.numLayers(), r.tensors().size());
    assertEquals((long) SEQ * calibration.size(), r.calibrationTokens());
    try (TensorSource in = Checkpoints.open(dense);
        TensorSource pruned = Checkpoints.open(out)) {
      assertEquals(in.names().size(), pruned.names().size());
      for (String name : in.names()) {
        var target = r.tensors().stream().filter(t -> t.name().equals(name)).findFirst();
        if (target.isEmpty()) {
          assertEquals(
              TestModels.bytes(in.raw(name)), TestModels.bytes(pruned.raw(name)), name + " copied");
          continue;
        }
        long[] shape = pruned.info(name).shape();
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[] w = pruned.readFloats(name);
        float[] orig = in.readFloats(name);
        int changedKept = 0;
        for (int row = 0; row < rows; row++) {
          int zeros = 0;
          for (int c = 0; c < cols; c++) {
            float v = w[row * cols + c];
            zeros += v == 0f ? 1 : 0;
            changedKept += v != 0f && v != orig[row * cols + c] ? 1 : 0;
          }
          assertEquals(cols / 2, zeros, name + " row " + row);
        }
        // SparseGPT updates the weights it keeps, unlike a mask
        assertTrue(
            changedKept > rows * cols / 4, name + ": " + changedKept + " kept weights moved");
        assertEquals(0.5, target.get().sparsity(), 1e-12, name);
      }
      assertEquals(
          "sparsegpt", pruned.metadata().get("compactor.prune.method"), "provenance metadata");
    }
    assertTrue(Files.exists(out.resolve("config.json")));
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    assertTrue(Double.isFinite(perplexity(out)));
  }

  @Test
  void nmPatternsHoldInEveryGroupForEveryMethod() throws Exception {
    for (Method method : Method.values()) {
      for (String p : new String[] {"2:4", "4:8"}) {
        NmPattern pattern = NmPattern.parse(p);
        Path out = tmp.resolve(method + "-" + pattern.n() + "of" + pattern.m());
        PruningReport r = prune(PruningSpec.of(method, pattern), out);
        try (TensorSource pruned = Checkpoints.open(out)) {
          assertEquals(p, pruned.metadata().get("compactor.prune.pattern"));
          assertEquals((double) pattern.m(), r.metrics().get("prune.pattern_m"));
          for (PruningReport.TensorSparsity t : r.tensors()) {
            long[] shape = pruned.info(t.name()).shape();
            int rows = (int) shape[0];
            int cols = (int) shape[1];
            float[] w = pruned.readFloats(t.name());
            for (int row = 0; row < rows; row++) {
              for (int g = 0; g < cols; g += pattern.m()) {
                int zeros = 0;
                for (int c = g; c < g + pattern.m(); c++) {
                  zeros += w[row * cols + c] == 0f ? 1 : 0;
                }
                assertTrue(
                    zeros >= pattern.pruned(),
                    method + " " + p + " " + t.name() + " row " + row + " group " + g);
              }
            }
          }
        }
      }
    }
  }

  /** The quality ordering of the papers, on the tiny model: SparseGPT and Wanda far ahead. */
  @Test
  void sparseGptAndWandaBeatMagnitudeInPerplexity() throws Exception {
    double base = perplexity(dense);
    Map<String, Double> ppl = new LinkedHashMap<>();
    for (String p : new String[] {"0.5", "2:4"}) {
      for (Method method : Method.values()) {
        PruningSpec spec =
            p.contains(":")
                ? PruningSpec.of(method, NmPattern.parse(p))
                : PruningSpec.of(method, Double.parseDouble(p));
        Path out = tmp.resolve("order-" + method + "-" + p.replace(':', 'o'));
        long start = System.nanoTime();
        prune(spec, out);
        double seconds = (System.nanoTime() - start) / 1e9;
        double v = perplexity(out);
        ppl.put(method + " " + p, v);
        LOG.info("{} {}: perplexity {} (dense {}), pruned in {} s", method, p, v, base, seconds);
      }
    }
    for (String p : new String[] {"0.5", "2:4"}) {
      double magnitude = ppl.get(Method.MAGNITUDE + " " + p);
      assertTrue(ppl.get(Method.SPARSEGPT + " " + p) < magnitude, ppl.toString());
      assertTrue(ppl.get(Method.WANDA + " " + p) < magnitude, ppl.toString());
    }
  }

  /**
   * Fused Phi-3 projections, Mixtral experts (each on its routed tokens; router untouched) and a
   * BF16 checkpoint with biases (pruned values written as BF16, the zeros exact).
   */
  @Test
  void prunesFusedProjectionsAndExpertsLayerByLayer() throws Exception {
    java.util.Random rnd = new java.util.Random(5);
    for (String family :
        new String[] {
          "phi3_fused",
          "mixtral_moe",
          "qwen2_moe_shared",
          "qwen3_moe_qk_norm",
          "llama_gqa_untied_bias_bf16"
        }) {
      Path in = Path.of("src/test/resources/golden/" + family);
      ModelConfig config = ModelConfig.read(in);
      List<int[]> windows = new java.util.ArrayList<>();
      for (int k = 0; k < 12; k++) {
        int[] w = new int[16];
        for (int t = 0; t < w.length; t++) {
          w[t] = rnd.nextInt(config.vocabSize());
        }
        windows.add(w);
      }
      Path out = tmp.resolve("sparsegpt-" + family);
      PruningReport r =
          Pruning.run(PruningSpec.of(Method.SPARSEGPT, 0.5), in, out, () -> windows, Device.cpu());
      assertTrue(r.tensors().size() > 0, family);
      assertEquals(config.moe(), !r.expertTokens().isEmpty(), family + " expert token counts");
      try (TensorSource a = Checkpoints.open(in);
          TensorSource b = Checkpoints.open(out)) {
        for (String name : a.names()) {
          boolean target = r.tensors().stream().anyMatch(t -> t.name().equals(name));
          if (!target) {
            assertEquals(TestModels.bytes(a.raw(name)), TestModels.bytes(b.raw(name)), name);
            continue;
          }
          int rows = (int) b.info(name).shape()[0];
          int cols = (int) b.info(name).shape()[1];
          float[] w = b.readFloats(name);
          for (int row = 0; row < rows; row++) {
            int zeros = 0;
            for (int c = 0; c < cols; c++) {
              zeros += w[row * cols + c] == 0f ? 1 : 0;
            }
            assertEquals(cols / 2, zeros, family + " " + name + " row " + row);
          }
        }
        assertTrue(
            r.tensors().stream()
                .noneMatch(
                    t ->
                        t.name().contains(".gate.weight")
                            || t.name().contains("shared_expert_gate")),
            "the router and the shared expert's gate are never pruned");
      }
      try (Transformer m = Transformer.load(out, Device.cpu())) {
        assertEquals(config.numLayers(), m.config().numLayers());
      }
    }
  }

  /**
   * The wiring, checked independently for the first stage of layer 0: its input is RMSNorm of the
   * token embeddings, computed here in plain Java, and SparseGPT on {@code 2/n X^T X} of it must
   * give the q_proj the pipeline wrote.
   */
  @Test
  void firstLayerIsPrunedFromTheHessianOfItsRealInputs() throws Exception {
    List<int[]> windows = calibration.subList(0, 4);
    Path out = tmp.resolve("wiring");
    Pruning.run(PruningSpec.of(Method.SPARSEGPT, 0.5), dense, out, () -> windows, Device.cpu());
    ModelConfig c = ModelConfig.read(dense);
    int hidden = c.hiddenSize();
    try (TensorSource in = Checkpoints.open(dense);
        TensorSource pruned = Checkpoints.open(out)) {
      float[] embed = in.readFloats("model.embed_tokens.weight");
      float[] norm = in.readFloats("model.layers.0.input_layernorm.weight");
      int n = windows.size() * SEQ;
      double[] h = new double[hidden * hidden];
      double[] x = new double[hidden];
      for (int[] window : windows) {
        for (int token : window) {
          double ss = 0;
          for (int j = 0; j < hidden; j++) {
            double v = embed[token * hidden + j];
            ss += v * v;
          }
          double inv = 1 / Math.sqrt(ss / hidden + c.normEps());
          for (int j = 0; j < hidden; j++) {
            x[j] = (float) ((float) (embed[token * hidden + j] * inv) * norm[j]);
          }
          for (int a = 0; a < hidden; a++) {
            for (int b = 0; b < hidden; b++) {
              h[a * hidden + b] += 2.0 / n * x[a] * x[b];
            }
          }
        }
      }
      String q = "model.layers.0.self_attn.q_proj.weight";
      float[] w = in.readFloats(q);
      int rows = w.length / hidden;
      SparseGpt.Result expected =
          SparseGpt.of(PruningSpec.of(Method.SPARSEGPT, 0.5)).prune(w, rows, hidden, h);
      float[] got = pruned.readFloats(q);
      int maskDiffers = 0;
      double maxDiff = 0;
      for (int i = 0; i < got.length; i++) {
        if ((got[i] == 0f) != expected.mask().get(i)) {
          maskDiffers++;
        } else {
          maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected.weight()[i]));
        }
      }
      LOG.info("layer 0 q_proj: {} mask positions differ, max |diff| {}", maskDiffers, maxDiff);
      // float32 forward vs double here: only near-ties of the saliency may flip
      assertTrue(maskDiffers <= got.length / 200, maskDiffers + " of " + got.length + " differ");
      assertTrue(maxDiff < 1e-4, "max |pipeline - reference| = " + maxDiff);
    }
  }
}
