package dev.compactor.core.prune.structured;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.prune.depth.DepthPruner;
import dev.compactor.core.prune.structured.StructuredSpec.HeadMode;
import dev.compactor.core.prune.structured.StructuredSpec.Importance;
import dev.compactor.core.prune.structured.StructuredSpec.Widths;
import dev.compactor.core.prune.structured.StructuredTestModels.Weights;
import dev.compactor.core.quant.table.GgufExport;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Non-uniform structured pruning ({@link Widths#PER_LAYER}): the allocation rule on constructed
 * scores, and end to end on a random model, the per-layer model equals the unpruned one with the
 * removed channels switched off (their up_proj rows zeroed), resident and streaming.
 */
class PerLayerWidthsTest {

  @TempDir Path tmp;

  private static final int VOCAB = 67;
  // hidden 32, intermediate 48, 3 layers, 4 heads of 8, 2 KV heads
  private static final ModelConfig LLAMA = ModelConfig.llama(VOCAB, 32, 48, 3, 4, 2, 64);
  private static final List<int[]> CALIBRATION = StructuredTestModels.windows(6, 24, VOCAB, 21);
  private static final List<int[]> EVAL = StructuredTestModels.windows(3, 20, VOCAB, 22);

  @Test
  void theLowestStandardisedScoresOfAllLayersGoAndEveryLayerKeepsOne() {
    // z-scores of {1, 2, 3, 4} are ±1.342, ±0.447: every layer looks alike after standardising
    assertArrayEquals(
        new double[] {-1.3416, -0.4472, 0.4472, 1.3416},
        Arrays.stream(StructuredPruner.standardised(new double[] {1, 2, 3, 4}))
            .map(v -> Math.round(v * 1e4) / 1e4)
            .toArray());
    assertArrayEquals(new double[] {0, 0}, StructuredPruner.standardised(new double[] {5, 5}));
    double[][] z = {{-3, -2, 1, 2}, {-0.5, 0, 0.5, 1}, {-1, -1, -1, 9}};
    // the 5 lowest: -3, -2 (layer 0), then -1 -1 -1 (layer 2), ties by layer then index
    assertArrayEquals(new int[] {2, 0, 3}, StructuredPruner.lowestAcrossLayers(z, 5));
    // then -0.5 and 0 of layer 1; layer 0's 1 waits
    assertArrayEquals(new int[] {2, 2, 3}, StructuredPruner.lowestAcrossLayers(z, 7));
    // at most 3 of 4 from a layer: layer 2's 9 is never taken, layer 1's 1 neither
    assertArrayEquals(new int[] {3, 3, 3}, StructuredPruner.lowestAcrossLayers(z, 9));
    String m =
        assertThrows(
                IllegalArgumentException.class, () -> StructuredPruner.lowestAcrossLayers(z, 10))
            .getMessage();
    assertTrue(m.contains("can remove 1..9 (every layer keeps one)"), m);
  }

  @Test
  void perLayerModelEqualsTheDenseOneWithTheRemovedChannelsOff() throws Exception {
    Weights w = StructuredTestModels.random(LLAMA, 31);
    // layer 1's channels 0..19 nearly dead: FLAP's standardised scores should take most there
    for (int ch = 0; ch < 20; ch++) {
      float[] up = w.get("model.layers.1.mlp.up_proj.weight");
      for (int c = 0; c < 32; c++) {
        up[ch * 32 + c] *= 1e-3f;
      }
    }
    Path in = w.write(tmp.resolve("in"));
    Path out = tmp.resolve("out");
    StructuredReport r =
        new StructuredPruner(
                new StructuredSpec(
                    0, 0.25, Importance.FLUCTUATION, HeadMode.KV_GROUPS, false, Widths.PER_LAYER))
            .prune(in, out, CALIBRATION, Map.of(), StructuredPruner.Progress.NONE);
    int[] removed = new int[3];
    for (StructuredReport.Layer l : r.layers()) {
      removed[l.layer()] = l.removedChannels().length;
    }
    assertEquals(36, Arrays.stream(removed).sum(), "round(0.25 * 3 * 48)");
    assertTrue(removed[1] > removed[0] && removed[1] > removed[2], Arrays.toString(removed));
    ModelConfig c = ModelConfig.read(out);
    assertTrue(c.perLayerWidths());
    for (int i = 0; i < 3; i++) {
      assertEquals(48 - removed[i], c.intermediateSize(i));
    }
    assertEquals(48 - Arrays.stream(removed).min().orElseThrow(), c.intermediateSize());
    assertEquals(r.parametersAfter(), LLAMA.parameterCount() - 3L * 32 * 36);
    assertEquals(r.parametersAfter(), c.parameterCount());
    try (TensorSource s = Checkpoints.open(out)) {
      assertArrayEquals(
          new long[] {48 - removed[1], 32}, s.info("model.layers.1.mlp.gate_proj.weight").shape());
      assertArrayEquals(
          new long[] {32, 48 - removed[2]}, s.info("model.layers.2.mlp.down_proj.weight").shape());
      assertEquals("per_layer", s.metadata().get("compactor.prune.structured.widths"));
    }

    // the reference: the unpruned weights with each removed channel's up_proj row zeroed
    for (StructuredReport.Layer l : r.layers()) {
      float[] up = w.get("model.layers." + l.layer() + ".mlp.up_proj.weight");
      for (int ch : l.removedChannels()) {
        Arrays.fill(up, ch * 32, ch * 32 + 32, 0f);
      }
    }
    Path off = w.write(tmp.resolve("off"));
    float[] expected = StructuredTestModels.logits(off, EVAL);
    float[] resident = StructuredTestModels.logits(out, EVAL);
    double diff = StructuredTestModels.maxAbsDiff(expected, resident);
    assertTrue(diff <= 1e-5, "resident per-layer logits moved by " + diff);
    try (StreamingTransformer st = StreamingTransformer.open(out, Device.cpu());
        NDManager m = NDManager.newBaseManager(Device.cpu())) {
      int[] ids = new int[EVAL.size() * 20];
      for (int i = 0; i < EVAL.size(); i++) {
        System.arraycopy(EVAL.get(i), 0, ids, i * 20, 20);
      }
      NDArray tokens = m.create(ids, new Shape(EVAL.size(), 20));
      double s = StructuredTestModels.maxAbsDiff(expected, st.logits(m, tokens).toFloatArray());
      assertTrue(s <= 1e-5, "streaming per-layer logits moved by " + s);
    }

    // depth pruning keeps the kept layers' widths; GGUF export and re-pruning refuse
    ObjectNode raw = (ObjectNode) new ObjectMapper().readTree(c.toJson());
    ModelConfig dropped =
        ModelConfig.fromJson(DepthPruner.prunedConfig(raw, c, new int[] {1}).toString());
    assertEquals(48 - removed[0], dropped.intermediateSize(0));
    assertEquals(48 - removed[2], dropped.intermediateSize(1));
    assertEquals(Math.max(48 - removed[0], 48 - removed[2]), dropped.intermediateSize());
    String gguf =
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    GgufExport.export(
                        out,
                        dev.compactor.core.gguf.LlamaFileType.F32,
                        Map.of(),
                        tmp.resolve("x.gguf")))
            .getMessage();
    assertTrue(gguf.startsWith("not supported yet: GGUF export of per-layer MLP widths"), gguf);
    String again =
        assertThrows(
                UnsupportedOperationException.class,
                () ->
                    StructuredPruner.check(
                        c,
                        new StructuredSpec(
                            0, 0.25, Importance.ACTIVATION, HeadMode.KV_GROUPS, false)))
            .getMessage();
    assertTrue(again.contains("structured pruning of a model with per-layer MLP widths"), again);
  }

  @Test
  void configRefusesBadWidthLists() {
    ModelConfig.fromJson(LLAMA.toJson()).with("{\"compactor_intermediate_sizes\":[48,10,7]}");
    assertThrows(
        IllegalArgumentException.class,
        () -> LLAMA.with("{\"compactor_intermediate_sizes\":[48,10]}"));
    assertThrows(
        IllegalArgumentException.class,
        () -> LLAMA.with("{\"compactor_intermediate_sizes\":[40,10,7]}"));
    assertThrows(
        IllegalArgumentException.class,
        () -> LLAMA.with("{\"compactor_intermediate_sizes\":[48,0,7]}"));
  }
}
