package dev.compactor.core.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorChunkReader;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.tiny.DeepReferenceModel;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Recovery after pruning on the shipped tiny model: the recovered model keeps exactly the pruned
 * zeros and is closer to the dense model than the pruned one; iterative pruning follows the cubic
 * schedule and ends at the target sparsity.
 */
class PruningRecoveryTest {

  private static final int SEQ = 64;

  @TempDir static Path tmp;
  static Path dense;
  static List<int[]> calibration;
  static List<int[]> train;
  static List<int[]> heldOut;

  /** Few steps, high rate: enough to move a 1 M-parameter model measurably in seconds. */
  static final DistillationSpec RECOVERY =
      new DistillationSpec(1f, 1f, 12, 4, 1e-3f, 2, 0f, 1f, 0, 3L);

  @BeforeAll
  static void setUp() throws Exception {
    dense = TinyReferenceModel.shipped();
    Corpus corpus = Corpus.europarlEnglish();
    ByteTokenizer tok = new ByteTokenizer();
    calibration = corpus.calibrationSamples(tok, 8, SEQ, 7);
    train = corpus.calibrationSamples(tok, 48, SEQ + 1, 11);
    heldOut = corpus.calibrationSamples(tok, 16, SEQ + 1, 12);
  }

  @Test
  void cubicScheduleMatchesTheFormulaAndEndsAtTheTarget() {
    double[] s = PruningRecovery.cubicSchedule(0.5, 3);
    assertEquals(3, s.length);
    assertEquals(0.5 * (1 - 8.0 / 27), s[0], 1e-12);
    assertEquals(0.5 * (1 - 1.0 / 27), s[1], 1e-12);
    assertEquals(0.5, s[2], 0);
    assertArrayEquals(new double[] {0.3}, PruningRecovery.cubicSchedule(0.3, 1), 0);
    assertThrows(IllegalArgumentException.class, () -> PruningRecovery.cubicSchedule(1.0, 2));
    assertThrows(IllegalArgumentException.class, () -> PruningRecovery.cubicSchedule(0.5, 0));
  }

  @Test
  void recoveryKeepsEveryPrunedZeroAndMovesTowardsTheDenseModel() throws Exception {
    Path pruned = tmp.resolve("magnitude-50");
    Pruning.run(PruningSpec.of(Method.MAGNITUDE, 0.5), dense, pruned, () -> null, Device.cpu());
    Path recovered = tmp.resolve("recovered");
    var report =
        PruningRecovery.recover(
            dense, pruned, recovered, train, RECOVERY, tmp.resolve("ckpt"), Device.cpu());
    assertEquals(12, report.totalSteps());
    assertTrue(Files.isRegularFile(recovered.resolve("tokenizer.json")), "tokenizer copied");

    TensorChunkReader reader = new TensorChunkReader();
    int linears = 0;
    try (TensorSource before = Checkpoints.open(pruned);
        TensorSource after = Checkpoints.open(recovered)) {
      for (String name : before.names()) {
        if (!LayerwiseQuantizer.isDecoderLinear(name)) {
          continue;
        }
        linears++;
        int n = (int) before.info(name).numel();
        float[] a = new float[n];
        float[] b = new float[n];
        reader.read(before, name, 0, a, 0, n);
        reader.read(after, name, 0, b, 0, n);
        int moved = 0;
        for (int i = 0; i < n; i++) {
          assertEquals(a[i] == 0f, b[i] == 0f, name + "[" + i + "]: zeros are exactly the pruned");
          if (a[i] != b[i]) {
            moved++;
          }
        }
        assertTrue(moved > 0, name + " was trained");
      }
    }
    assertEquals(28, linears);
    assertEquals(0.5, WeightSparsity.of(recovered).fraction(), 1e-9);

    try (Transformer teacher = Transformer.load(dense, Device.cpu());
        Transformer p = Transformer.load(pruned, Device.cpu());
        Transformer r = Transformer.load(recovered, Device.cpu())) {
      double klPruned = Distiller.meanKl(teacher, p, heldOut, 8);
      double klRecovered = Distiller.meanKl(teacher, r, heldOut, 8);
      assertTrue(
          klRecovered < 0.9 * klPruned,
          "held-out KL to the dense model: pruned " + klPruned + ", recovered " + klRecovered);
    }
  }

  @Test
  void aRecoveredModelIsStoredInThePrunedModelsDtype() throws Exception {
    Path deep = DeepReferenceModel.shipped();
    Path pruned = tmp.resolve("deep-magnitude-50");
    Pruning.run(PruningSpec.of(Method.MAGNITUDE, 0.5), deep, pruned, () -> null, Device.cpu());
    assertEquals(DType.BF16, ModelDirectory.open(pruned).dominantDType());
    Path recovered = tmp.resolve("deep-recovered");
    PruningRecovery.recover(
        deep,
        pruned,
        recovered,
        train,
        new DistillationSpec(1f, 1f, 1, 2, 1e-4f, 0, 0f, 1f, 0, 3L),
        tmp.resolve("deep-ckpt"),
        Device.cpu());
    assertEquals(DType.BF16, ModelDirectory.open(recovered).dominantDType());
    assertEquals(
        ModelDirectory.open(pruned).totalWeightBytes(),
        ModelDirectory.open(recovered).totalWeightBytes());
    assertEquals(0.5, WeightSparsity.of(recovered).fraction(), 1e-9, "BF16 keeps zeros zero");
  }

  @Test
  void iterativePruningEndsAtTheTargetAfterEveryScheduledRound() throws Exception {
    Path out = tmp.resolve("iterative");
    List<PruningRecovery.Round> rounds =
        PruningRecovery.iterative(
            PruningSpec.of(Method.WANDA, 0.5),
            2,
            new DistillationSpec(1f, 1f, 4, 4, 1e-3f, 1, 0f, 1f, 0, 3L),
            dense,
            tmp.resolve("iterative-work"),
            out,
            () -> calibration,
            train,
            Device.cpu());
    assertEquals(2, rounds.size());
    assertEquals(0.5 * (1 - 1.0 / 8), rounds.get(0).sparsity(), 1e-12);
    assertEquals(0.4375, rounds.get(0).pruning().overallSparsity(), 1e-3);
    assertEquals(0.5, rounds.get(1).pruning().overallSparsity(), 1e-9);
    assertEquals(0.5, WeightSparsity.of(out).fraction(), 1e-9);
    assertThrows(
        UnsupportedOperationException.class,
        () ->
            PruningRecovery.iterative(
                PruningSpec.of(Method.WANDA, new NmPattern(2, 4)),
                2,
                RECOVERY,
                dense,
                tmp.resolve("nm"),
                tmp.resolve("nm-out"),
                () -> calibration,
                train,
                Device.cpu()));
  }

  @Test
  void aCheckedRecoveryKeepsThePrunedModelWhenTrainingMakesItWorse() throws Exception {
    Path pruned = tmp.resolve("checked-pruned");
    Pruning.run(PruningSpec.of(Method.MAGNITUDE, 0.5), dense, pruned, () -> null, Device.cpu());
    Path good = tmp.resolve("checked-good");
    PruningRecovery.Checked better =
        PruningRecovery.recoverIfBetter(
            dense, pruned, good, train, heldOut, RECOVERY, tmp.resolve("ck1"), Device.cpu());
    assertTrue(better.kept(), better.note());
    assertTrue(better.klAfter() < better.klBefore(), better.klBefore() + " -> " + better.klAfter());

    // a rate of 0.5 wrecks the model (or diverges): the output must be the pruned model unchanged
    DistillationSpec wrecking = new DistillationSpec(1f, 1f, 6, 4, 0.5f, 0, 0f, 0f, 0, 3L);
    Path bad = tmp.resolve("checked-bad");
    PruningRecovery.Checked worse =
        PruningRecovery.recoverIfBetter(
            dense, pruned, bad, train, heldOut, wrecking, tmp.resolve("ck2"), Device.cpu());
    assertTrue(!worse.kept(), "kept a worse model: " + worse);
    assertTrue(worse.note().contains("kept the pruned model"), worse.note());
    try (TensorSource a = Checkpoints.open(pruned);
        TensorSource b = Checkpoints.open(bad)) {
      for (String name : a.names()) {
        assertArrayEquals(a.readFloats(name), b.readFloats(name), name);
      }
    }
  }
}
