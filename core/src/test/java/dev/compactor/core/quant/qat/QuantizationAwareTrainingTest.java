package dev.compactor.core.quant.qat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.export.CompressedTensorsReader;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** QAT on the shipped tiny reference model (4 layers, hidden 128, fp32). */
class QuantizationAwareTrainingTest {

  private static final Path MODEL = TinyReferenceModel.shipped();
  private static List<int[]> calibration;
  private static List<int[]> train;
  private static List<int[]> held;

  @BeforeAll
  static void text() throws Exception {
    try (TextTokenizer tok = Tokenizers.forModel(MODEL)) {
      var corpus = CalibrationText.builtin().corpus();
      calibration = corpus.calibrationSamples(tok, 16, 64, 0);
      train = corpus.calibrationSamples(tok, 64, 33, 1);
      held = corpus.calibrationSamples(tok, 16, 65, 2);
    }
  }

  @Test
  void startsExactlyAtTheRtnOrGptqModelAndExportsItsGrid(@TempDir Path tmp) throws Exception {
    for (Method method : List.of(Method.RTN, Method.GPTQ)) {
      Path init = tmp.resolve(method.id());
      WeightQuantization q = new WeightQuantization(method, 3, 32, true);
      try (QuantizationAwareTraining qat =
              QuantizationAwareTraining.start(
                  MODEL, q, calibration, init, Device.cpu(), ProgressListener.NONE);
          Transformer initModel = Transformer.load(init, Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        Map<String, QuantizedLinear> grid = qat.export();
        assertEquals(4 * 7, grid.size());
        for (Map.Entry<String, QuantizedLinear> e : grid.entrySet()) {
          assertEquals(3, e.getValue().bits());
          assertArrayEquals(
              initModel.parameters().get(e.getKey()).toFloatArray(),
              e.getValue().dequantize(),
              0f,
              method + " " + e.getKey());
        }
        NDArray tokens = m.create(held.get(0), new Shape(1, held.get(0).length));
        float[] fake = qat.model().logits(m, tokens, qat.transform()).toFloatArray();
        float[] plain = initModel.logits(m, tokens).toFloatArray();
        assertArrayEquals(plain, fake, 1e-4f, method + ": fake-quantized forward vs init model");
      }
    }
  }

  @Test
  void trainingLowersTheKlAndTheExportComputesWhatTrainingSaw(@TempDir Path tmp) throws Exception {
    WeightQuantization q = new WeightQuantization(Method.RTN, 2, 32, true);
    DistillationSpec spec = new DistillationSpec(1f, 0.9f, 16, 4, 2e-4f, 0, 0f, 1f, 0, 5L);
    try (Transformer teacher = Transformer.load(MODEL, Device.cpu());
        QuantizationAwareTraining qat =
            QuantizationAwareTraining.start(
                MODEL, q, calibration, tmp.resolve("init"), Device.cpu(), ProgressListener.NONE)) {
      double before;
      try (Transformer rtn = Transformer.load(tmp.resolve("init"), Device.cpu())) {
        before = Distiller.meanKl(teacher, rtn, held, 4);
      }
      float[] step0 = qat.steps().values().iterator().next().toFloatArray();
      qat.train(teacher, train, spec, new LocalCheckpointSink(tmp.resolve("ckpt"), 1));
      float[] step1 = qat.steps().values().iterator().next().toFloatArray();
      double moved = 0;
      for (int i = 0; i < step0.length; i++) {
        moved = Math.max(moved, Math.abs(step1[i] - step0[i]));
      }
      assertTrue(moved > 1e-5, "the steps did not learn: max change " + moved);
      qat.writeDequantized(tmp.resolve("after"), null);
      try (Transformer after = Transformer.load(tmp.resolve("after"), Device.cpu());
          NDManager m = NDManager.newBaseManager()) {
        double kl = Distiller.meanKl(teacher, after, held, 4);
        assertTrue(kl < 0.8 * before, "QAT KL " + kl + " vs RTN " + before);
        NDArray tokens = m.create(held.get(1), new Shape(1, held.get(1).length));
        assertArrayEquals(
            after.logits(m, tokens).toFloatArray(),
            qat.model().logits(m, tokens, qat.transform()).toFloatArray(),
            1e-4f,
            "the exported grid computes what the fake-quantized model computed");
      }
    }
  }

  @Test
  void compressedTensorsCarriesTheLearnedGridAndLowBitsAreRefused(@TempDir Path tmp)
      throws Exception {
    DistillationSpec spec = new DistillationSpec(1f, 0.9f, 3, 2, 1e-3f, 0, 0f, 1f, 0, 5L);
    try (Transformer teacher = Transformer.load(MODEL, Device.cpu());
        QuantizationAwareTraining qat =
            QuantizationAwareTraining.start(
                MODEL,
                new WeightQuantization(Method.RTN, 4, 32, true),
                calibration,
                tmp.resolve("init"),
                Device.cpu(),
                ProgressListener.NONE)) {
      qat.train(teacher, train, spec, new LocalCheckpointSink(tmp.resolve("ckpt"), 1));
      qat.writeCompressedTensors(tmp.resolve("ct"), DType.F32);
      CompressedTensorsScheme scheme =
          new CompressedTensorsScheme(
              CompressedTensorsScheme.Format.PACK_QUANTIZED, 4, true, 32, null);
      try (TensorSource ct = Checkpoints.open(tmp.resolve("ct"))) {
        for (Map.Entry<String, QuantizedLinear> e : qat.export().entrySet()) {
          String prefix = e.getKey().substring(0, e.getKey().length() - ".weight".length());
          QuantizedLinear read = CompressedTensorsReader.readLinear(ct, prefix, scheme);
          assertArrayEquals(e.getValue().codes(), read.codes(), prefix + " codes");
          assertArrayEquals(e.getValue().scales(), read.scales(), 0f, prefix + " steps");
        }
      }
    }
    try (QuantizationAwareTraining qat3 =
        QuantizationAwareTraining.start(
            MODEL,
            new WeightQuantization(Method.RTN, 3, 32, true),
            calibration,
            tmp.resolve("init3"),
            Device.cpu(),
            ProgressListener.NONE)) {
      UnsupportedOperationException e =
          assertThrows(
              UnsupportedOperationException.class,
              () -> qat3.writeCompressedTensors(tmp.resolve("ct3"), DType.F32));
      assertTrue(e.getMessage().startsWith("not supported yet: 3-bit export"), e.getMessage());
    }
  }
}
