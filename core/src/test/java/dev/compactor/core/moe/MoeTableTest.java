package dev.compactor.core.moe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MoeTableTest {

  @Test
  void rowsKeepingEveryExpertMatchTheOriginalAndFewerExpertsMoveAway(@TempDir Path tmp)
      throws Exception {
    ModelConfig c = MoeTestModels.mixtral(2, 4, 2);
    Path dir = MoeTestModels.save(c, 13, tmp.resolve("m"));
    int[] eval = MoeTestModels.sequences(1, 120, 3).get(0);
    Path work = Files.createDirectories(tmp.resolve("work"));
    List<MoeTable.Row> rows =
        new MoeTable(dir, work, eval, MoeTestModels.sequences(4, 16, 6), 32)
            .run(new int[] {4, 2}, ProgressListener.NONE);
    assertEquals(7, rows.size());
    assertEquals("original 4/4", rows.get(0).name());
    assertEquals("prune frequency 2/4", rows.get(4).name());
    assertEquals("merge weight-cosine 2/4", rows.get(6).name());
    for (int i = 0; i < 4; i++) {
      MoeTable.Row r = rows.get(i);
      assertEquals(0, r.result().klDivergence(), 1e-9, r.name());
      assertEquals(1, r.result().top1Agreement(), 0, r.name());
      assertEquals(0, r.deltaPplPercent(), 1e-9, r.name());
    }
    long h = c.hiddenSize();
    long expert = 3 * h * c.intermediateSize();
    long vocabH = c.vocabSize() * h;
    assertEquals(c.parameterCount() - 2 * 2 * expert, rows.get(0).activeParameters());
    assertEquals(2 * (rows.get(0).activeParameters() - vocabH), rows.get(0).flopsPerToken());
    for (int i = 4; i < 7; i++) {
      MoeTable.Row r = rows.get(i);
      assertEquals(2, r.keptExperts(), r.name());
      assertEquals(2, r.expertsPerToken(), r.name());
      assertEquals(c.parameterCount() - 2 * 2 * expert - 2 * 2 * h, r.parameters(), r.name());
      assertEquals(r.parameters(), r.activeParameters(), "k = n: every kept expert is active");
      assertTrue(r.result().klDivergence() > 1e-4, r.name() + " " + r.result());
    }
    try (var s = Files.list(work)) {
      assertEquals(0, s.count(), "compressed models are deleted after scoring");
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new MoeTable(dir, work, eval, List.of(), 32).run(new int[] {5}, ProgressListener.NONE));
  }
}
