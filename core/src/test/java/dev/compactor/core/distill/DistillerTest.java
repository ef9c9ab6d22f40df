package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

class DistillerTest {

  private static final Logger LOG = LoggerFactory.getLogger(DistillerTest.class);
  private static final int VOCAB = 67;

  @Test
  void resumingFromACheckpointGivesTheSameWeightsAsAnUninterruptedRun(@TempDir Path tmp)
      throws Exception {
    List<int[]> windows = markovWindows(12, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.7f, 6, 4, 3e-3f, 1, 0.01f, 1f, 3, 77L);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer straight = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      new Distiller(spec, new LocalCheckpointSink(tmp.resolve("a"), 2))
          .distill(teacher, straight, windows);

      LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve("b"), 2);
      CheckpointSink dying =
          new CheckpointSink() {
            @Override
            public void save(long step, Path directory) throws IOException {
              sink.save(step, directory);
              throw new IllegalStateException("worker killed after step " + step);
            }

            @Override
            public Optional<Checkpoint> latest() throws IOException {
              return sink.latest();
            }
          };
      try (Transformer first = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
        assertThrows(
            IllegalStateException.class,
            () -> new Distiller(spec, dying).distill(teacher, first, windows));
      }
      assertEquals(3, sink.latest().orElseThrow().step());
      try (Transformer restarted =
          Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
        DistillationReport report = new Distiller(spec, sink).distill(teacher, restarted, windows);
        assertEquals(3, report.resumedFromStep());
        assertEquals(6, report.totalSteps());
        float maxDiff = maxDifference(straight.parameters(), restarted.parameters());
        LOG.info("straight vs resumed: max |w - w'| = {}", maxDiff);
        assertTrue(maxDiff <= 1e-5f, "weights differ by " + maxDiff);
        assertTrue(
            maxDifference(initial(), restarted.parameters()) > 1e-3f, "training moved the weights");
      }
    }
  }

  @Test
  void refusesToResumeACheckpointOfADifferentDataOrder(@TempDir Path tmp) throws Exception {
    List<int[]> windows = markovWindows(8, 9, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 2, 2, 1e-3f, 0, 0f, 1f, 1, 77L);
    LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve("c"), 1);
    try (Transformer m = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      new Distiller(spec, sink).distill(m, m, windows);
      DistillationSpec otherSeed = new DistillationSpec(2f, 0.5f, 4, 2, 1e-3f, 0, 0f, 1f, 1, 78L);
      CheckpointFormatException e =
          assertThrows(
              CheckpointFormatException.class,
              () -> new Distiller(otherSeed, sink).distill(m, m, windows));
      assertTrue(e.getMessage().contains("seed"), e.getMessage());
      assertThrows(
          CheckpointFormatException.class,
          () -> new Distiller(spec, sink).distill(m, m, windows.subList(0, 6)));
    }
  }

  @Test
  void rejectsWindowsThatDoNotFit() throws Exception {
    DistillationSpec spec = DistillationSpec.defaults(2, 1, 0);
    try (Transformer m = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      Distiller d = new Distiller(spec, new InMemoryNoCheckpoints());
      assertThrows(IllegalArgumentException.class, () -> d.distill(m, m, List.of()));
      assertThrows(
          IllegalArgumentException.class,
          () -> d.distill(m, m, List.of(new int[] {1, 2, 3}, new int[] {1, 2})));
      assertThrows(
          IllegalArgumentException.class, () -> d.distill(m, m, List.of(new int[] {1, VOCAB})));
    }
  }

  /** A sink for runs that must fail before any checkpoint. */
  private static final class InMemoryNoCheckpoints implements CheckpointSink {
    @Override
    public void save(long step, Path directory) {
      throw new AssertionError("no checkpoint expected");
    }

    @Override
    public Optional<Checkpoint> latest() {
      return Optional.empty();
    }
  }

  private static Map<String, NDArray> initial() {
    return Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu()).parameters();
  }

  private static float maxDifference(Map<String, NDArray> a, Map<String, NDArray> b) {
    float max = 0;
    for (Map.Entry<String, NDArray> e : a.entrySet()) {
      float[] x = e.getValue().toFloatArray();
      float[] y = b.get(e.getKey()).toFloatArray();
      for (int i = 0; i < x.length; i++) {
        max = Math.max(max, Math.abs(x[i] - y[i]));
      }
    }
    return max;
  }

  /**
   * Token windows from a small Markov chain: the next token is mostly a fixed function of the
   * current one, so a model can learn it and a teacher has something to teach.
   */
  static List<int[]> markovWindows(int count, int length, long seed) {
    Random rnd = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int w = 0; w < count; w++) {
      int[] ids = new int[length];
      ids[0] = rnd.nextInt(VOCAB);
      for (int i = 1; i < length; i++) {
        int prev = ids[i - 1];
        ids[i] = rnd.nextDouble() < 0.8 ? (prev * 7 + 3) % VOCAB : (prev + rnd.nextInt(3)) % VOCAB;
      }
      out.add(ids);
    }
    return out;
  }
}
