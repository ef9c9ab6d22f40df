package dev.compactor.core.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorChunkReader;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.tiny.DeepReferenceModel;
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

/**
 * LoRA recovery of the shipped tiny model pruned 50 % by Wanda: the adapter lowers the held-out KL
 * to the dense model while the base stays bit-identical; a merged export keeps every pruned zero
 * and computes what base + adapter computed; a quantized base refuses the merge.
 */
class LoraRecoveryTest {

  private static final int SEQ = 64;

  @TempDir static Path tmp;
  static Path dense;
  static Path pruned;
  static List<int[]> train;
  static List<int[]> heldOut;

  /** Few steps at a LoRA-sized rate: enough to move the adapter measurably in seconds. */
  static final DistillationSpec TRAIN =
      new DistillationSpec(1f, 1f, 16, 4, 3e-3f, 2, 0f, 1f, 0, 3L);

  static final LoraSpec SPEC = new LoraSpec(8, 16f, LoraSpec.DEFAULT_TARGETS, 1L);

  @BeforeAll
  static void setUp() throws Exception {
    dense = TinyReferenceModel.shipped();
    Corpus corpus = Corpus.europarlEnglish();
    ByteTokenizer tok = new ByteTokenizer();
    List<int[]> calibration = corpus.calibrationSamples(tok, 8, SEQ, 7);
    train = corpus.calibrationSamples(tok, 48, SEQ + 1, 11);
    heldOut = corpus.calibrationSamples(tok, 16, SEQ + 1, 12);
    pruned = tmp.resolve("wanda-50");
    Pruning.run(PruningSpec.of(Method.WANDA, 0.5), dense, pruned, () -> calibration, Device.cpu());
  }

  @Test
  void trainingLowersHeldOutKlAndLeavesTheBaseBitIdentical() throws Exception {
    try (Transformer teacher = Transformer.load(dense, Device.cpu());
        Transformer base = Transformer.load(pruned, Device.cpu());
        LoraAdapter adapter = LoraAdapter.create(base, SPEC, false)) {
      Map<String, float[]> before = new LinkedHashMap<>();
      base.parameters().forEach((k, v) -> before.put(k, v.toFloatArray()));
      double klBefore = LoraRecovery.quality(teacher, base, heldOut).kl();
      new Distiller(TRAIN, new LocalCheckpointSink(tmp.resolve("ckpt-a"), 1))
          .distill(teacher, adapter.trainable(base), train);
      base.parameters()
          .forEach((k, v) -> assertArrayEquals(before.get(k), v.toFloatArray(), k + " moved"));
      double klAfter =
          LoraRecovery.quality(teacher, new AdaptedModelView(base, adapter), heldOut).kl();
      assertTrue(
          klAfter < 0.9 * klBefore,
          "held-out KL to the dense model: pruned " + klBefore + ", pruned + LoRA " + klAfter);
    }
  }

  @Test
  void aMergedRecoveryKeepsThePrunedZerosAndMatchesTheAdapter() throws Exception {
    Path out = tmp.resolve("merged-run");
    byte[] baseBytes = Files.readAllBytes(pruned.resolve("model.safetensors"));
    ObjectNode prov = new ObjectMapper().createObjectNode().put("tool", "test");
    LoraRecovery.Result r =
        LoraRecovery.run(
            dense,
            pruned,
            out,
            SPEC,
            TRAIN,
            true,
            train,
            heldOut,
            tmp.resolve("ckpt-b"),
            Device.cpu(),
            prov);
    assertTrue(r.masked(), "a pruned base with --merge trains the masked delta");
    assertTrue(r.after().kl() < r.before().kl(), r.before() + " -> " + r.after());
    assertEquals(DType.F32, r.mergedDType());
    assertArrayEquals(baseBytes, Files.readAllBytes(pruned.resolve("model.safetensors")));
    Path merged = out.resolve(LoraRecovery.MERGED_DIR);
    Path adapterDir = out.resolve(LoraRecovery.ADAPTER_DIR);
    assertTrue(Files.isRegularFile(merged.resolve("tokenizer.json")));
    assertZerosKept(pruned, merged);
    assertEquals(0.5, WeightSparsity.of(merged).fraction(), 1e-9);

    try (Transformer base = Transformer.load(pruned, Device.cpu());
        LoraAdapter adapter = PeftAdapterFiles.read(adapterDir, base);
        Transformer m = Transformer.load(merged, Device.cpu());
        NDManager nd = NDManager.newBaseManager()) {
      assertTrue(adapter.masked());
      NDArray tokens = nd.create(heldOut.get(0), new Shape(1, SEQ + 1));
      float[] a = base.logits(nd, tokens, adapter.transform()).toFloatArray();
      float[] b = m.logits(nd, tokens).toFloatArray();
      double d = 0;
      for (int i = 0; i < a.length; i++) {
        d = Math.max(d, Math.abs(a[i] - b[i]));
      }
      assertTrue(d <= 1e-4, "merged vs base + adapter logits: max |diff| " + d);
    }
  }

  @Test
  void aBf16BaseMergesIntoBf16AndKeepsItsZeros() throws Exception {
    Path deep = DeepReferenceModel.shipped();
    Path deepPruned = tmp.resolve("deep-magnitude-50");
    Pruning.run(PruningSpec.of(Method.MAGNITUDE, 0.5), deep, deepPruned, () -> null, Device.cpu());
    Path out = tmp.resolve("deep-run");
    LoraRecovery.Result r =
        LoraRecovery.run(
            deep,
            deepPruned,
            out,
            new LoraSpec(4, 8f, List.of("q_proj", "down_proj"), 2L),
            new DistillationSpec(1f, 1f, 2, 2, 1e-3f, 0, 0f, 1f, 0, 3L),
            true,
            train,
            heldOut.subList(0, 2),
            tmp.resolve("deep-ckpt"),
            Device.cpu(),
            null);
    assertEquals(DType.BF16, r.mergedDType());
    Path merged = out.resolve(LoraRecovery.MERGED_DIR);
    assertEquals(DType.BF16, ModelDirectory.open(merged).dominantDType());
    assertEquals(
        ModelDirectory.open(deepPruned).totalWeightBytes(),
        ModelDirectory.open(merged).totalWeightBytes());
    assertZerosKept(deepPruned, merged);
  }

  @Test
  void aQuantizedBaseRefusesTheMerge() throws Exception {
    Path q = tmp.resolve("quantized");
    Files.createDirectories(q);
    for (String f : List.of("model.safetensors", "tokenizer.json")) {
      Files.copy(pruned.resolve(f), q.resolve(f));
    }
    ObjectMapper json = new ObjectMapper();
    ObjectNode config = (ObjectNode) json.readTree(pruned.resolve("config.json").toFile());
    config.putObject("quantization_config").put("quant_method", "compactor-dequantized");
    Files.writeString(q.resolve("config.json"), json.writeValueAsString(config));
    var e =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                LoraRecovery.run(
                    dense,
                    q,
                    tmp.resolve("q-out"),
                    SPEC,
                    TRAIN,
                    true,
                    train,
                    heldOut,
                    tmp.resolve("q-ckpt"),
                    Device.cpu(),
                    null));
    assertTrue(
        e.getMessage().startsWith("not supported yet: merging an adapter into a quantized base"),
        e.getMessage());
    assertFalse(Files.exists(tmp.resolve("q-out")));
    assertEquals("compactor-dequantized", LoraRecovery.quantization(config).orElseThrow());
    ObjectNode sparseOnly = json.createObjectNode();
    sparseOnly
        .putObject("quantization_config")
        .put("quant_method", "compressed-tensors")
        .putObject("sparsity_config")
        .put("format", "sparse-bitmask");
    assertTrue(LoraRecovery.quantization(sparseOnly).isEmpty(), "sparsity alone is no grid");
  }

  private static void assertZerosKept(Path before, Path after) throws Exception {
    TensorChunkReader reader = new TensorChunkReader();
    int linears = 0;
    try (TensorSource a = Checkpoints.open(before);
        TensorSource b = Checkpoints.open(after)) {
      for (String name : a.names()) {
        if (!LayerwiseQuantizer.isDecoderLinear(name)) {
          continue;
        }
        linears++;
        int n = (int) a.info(name).numel();
        float[] x = new float[n];
        float[] y = new float[n];
        reader.read(a, name, 0, x, 0, n);
        reader.read(b, name, 0, y, 0, n);
        int moved = 0;
        for (int i = 0; i < n; i++) {
          assertEquals(x[i] == 0f, y[i] == 0f, name + "[" + i + "]: zeros are exactly the base's");
          if (x[i] != y[i]) {
            moved++;
          }
        }
        if (name.contains("q_proj") || name.contains("down_proj")) {
          assertTrue(moved > 0, name + " was not merged");
        }
      }
    }
    assertTrue(linears > 0);
  }

  /** Base + adapter as a CausalLM without owning either (the test closes them). */
  private record AdaptedModelView(Transformer base, LoraAdapter adapter)
      implements dev.compactor.core.model.CausalLM {
    @Override
    public int vocabSize() {
      return base.vocabSize();
    }

    @Override
    public int maxSequenceLength() {
      return base.maxSequenceLength();
    }

    @Override
    public NDArray logits(NDManager manager, NDArray tokens) {
      return base.logits(manager, tokens, adapter.transform());
    }

    @Override
    public Decoder decoder(NDManager manager, int batch) {
      return base.decoder(manager, batch, adapter.transform());
    }

    @Override
    public void close() {}
  }
}
