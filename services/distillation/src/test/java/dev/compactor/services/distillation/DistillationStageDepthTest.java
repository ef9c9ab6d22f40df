package dev.compactor.services.distillation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.compactor.core.distill.DistillationDepth;
import dev.compactor.core.distill.HiddenStateLoss;
import dev.compactor.core.distill.StudentBuilder;
import dev.compactor.core.recipe.DistillParams;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The recipe's hidden-state and top-k options reach the distiller as the stage builds them. */
class DistillationStageDepthTest {

  @Test
  void recipeOptionsBecomeTheDistillersDepth(@TempDir Path tmp) throws Exception {
    Path teacher = Files.createDirectories(tmp.resolve("teacher"));
    Files.writeString(teacher.resolve("config.json"), "{}");
    Files.write(teacher.resolve("model.safetensors"), new byte[] {1, 2, 3});
    StudentBuilder.Student s = new StudentBuilder.Student(tmp, 8, new int[] {0, 2, 5, 7});

    DistillationDepth none = DistillationStage.depth(DistillParams.Depth.NONE, s, tmp, teacher);
    assertNull(none.hidden());
    assertNull(none.topK());

    DistillationDepth hidden =
        DistillationStage.depth(new DistillParams.Depth("cosine", 0.25, 0), s, tmp, teacher);
    assertEquals(HiddenStateLoss.Kind.COSINE, hidden.hidden().kind());
    assertEquals(0.25f, hidden.hidden().weight());
    assertArrayEquals(new int[] {0, 2, 5, 7}, hidden.hidden().teacherLayers());

    DistillationDepth topK =
        DistillationStage.depth(new DistillParams.Depth(null, 1.0, 32), s, tmp, teacher);
    assertEquals(32, topK.topK().k());
    assertEquals(tmp.resolve("teacher-topk.bin"), topK.topK().file());
    String id = topK.topK().teacherId();
    Files.write(teacher.resolve("model.safetensors"), new byte[] {1, 2, 4});
    assertNotEquals(
        id,
        DistillationStage.depth(new DistillParams.Depth(null, 1.0, 32), s, tmp, teacher)
            .topK()
            .teacherId(),
        "the cache is bound to the teacher's weights");
  }
}
