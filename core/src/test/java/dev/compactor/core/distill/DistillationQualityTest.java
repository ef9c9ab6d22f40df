package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The distillation stage end to end on a small teacher that has learned a small corpus: the
 * distilled student is closer to the teacher on held-out text than the student before training.
 */
class DistillationQualityTest {

  private static final Logger LOG = LoggerFactory.getLogger(DistillationQualityTest.class);

  @Test
  void distilledStudentIsCloserToTheTeacherThanTheUndistilledOne(@TempDir Path tmp)
      throws Exception {
    List<int[]> train = DistillerTest.markovWindows(48, 17, 11);
    List<int[]> heldOut = DistillerTest.markovWindows(16, 17, 12);
    Path teacherDir = tmp.resolve("teacher");
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(3), 4, Device.cpu())) {
      // A teacher that knows the corpus: fit it first (alpha 0 is pure cross-entropy).
      DistillationSpec fit = new DistillationSpec(1f, 0f, 40, 8, 2e-2f, 2, 0f, 1f, 0, 5L);
      DistillationReport fitted =
          new Distiller(fit, new LocalCheckpointSink(tmp.resolve("fit"), 1))
              .distill(teacher, teacher, train);
      LOG.info("teacher cross-entropy {} -> {}", fitted.startLoss(), fitted.endLoss());
      TestModels.write(teacher, teacherDir, DType.F32);
    }
    StudentBuilder.build(teacherDir, tmp.resolve("undistilled"), 2);

    DistillationSpec spec = new DistillationSpec(2f, 0.9f, 30, 8, 5e-3f, 2, 0f, 1f, 15, 9L);
    DistillationReport report =
        new Distiller(spec, new LocalCheckpointSink(tmp.resolve("ckpt"), 1))
            .distillDirectory(
                teacherDir,
                tmp.resolve("work"),
                tmp.resolve("out"),
                2,
                train,
                DType.BF16,
                Device.cpu());
    assertEquals(2, report.checkpoints());
    assertEquals(30L * 8 * 16, report.tokens());
    assertTrue(report.endLoss() < report.startLoss());
    assertEquals(TestModels.TOKENIZER_JSON, Files.readString(tmp.resolve("out/tokenizer.json")));
    try (TensorSource out = Checkpoints.open(tmp.resolve("out"))) {
      assertEquals(DType.BF16, out.info("model.layers.1.mlp.up_proj.weight").dtype());
      assertArrayEquals(new long[] {48, 32}, out.info("model.layers.1.mlp.up_proj.weight").shape());
    }

    try (Transformer teacher = Transformer.load(teacherDir, Device.cpu());
        Transformer before = Transformer.load(tmp.resolve("undistilled"), Device.cpu());
        Transformer after = Transformer.load(tmp.resolve("out"), Device.cpu())) {
      assertEquals(2, after.config().numLayers());
      double klBefore = Distiller.meanKl(teacher, before, heldOut, 8);
      double klAfter = Distiller.meanKl(teacher, after, heldOut, 8);
      LOG.info(
          "held-out KL(teacher||student) {} -> {}; loss {} -> {} in {} s",
          klBefore,
          klAfter,
          report.startLoss(),
          report.endLoss(),
          report.seconds());
      assertTrue(klAfter < 0.7 * klBefore, "KL " + klBefore + " -> " + klAfter);
    }
  }
}
