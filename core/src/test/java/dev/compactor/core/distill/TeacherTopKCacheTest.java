package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TeacherTopKCacheTest {

  private static final int VOCAB = 67;

  @Test
  void kEqualToTheVocabularyGivesTheFullTeacherLoss(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(6, 11, 2);
    int seq = 10;
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer student = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu());
        TeacherTopKCache cache =
            TeacherTopKCache.openOrBuild(tmp.resolve("c.bin"), teacher, "t", windows, VOCAB, 4);
        NDManager m = NDManager.newBaseManager();
        DistillationLoss loss = new DistillationLoss(m, 2f, 0.7f)) {
      int[] batch = {4, 1, 5};
      int[] in = new int[batch.length * seq];
      int[] y = new int[batch.length * seq];
      for (int b = 0; b < batch.length; b++) {
        System.arraycopy(windows.get(batch[b]), 0, in, b * seq, seq);
        System.arraycopy(windows.get(batch[b]), 1, y, b * seq, seq);
      }
      NDArray tokens = m.create(in, new Shape(batch.length, seq));
      NDArray targets = m.create(y, new Shape(batch.length, seq));
      NDArray s = student.logits(m, tokens);
      NDArray t = teacher.logits(m, tokens);
      NDList top = cache.read(m, batch);
      float full = loss.terms(s, t, targets).loss().getFloat();
      float cached = loss.topKTerms(s, top.get(0), top.get(1), targets, null).loss().getFloat();
      assertEquals(full, cached, 1e-5, "k = vocab");
      // and a small k only drops the teacher's tail: the KL over the support differs but is close
      try (TeacherTopKCache small =
          TeacherTopKCache.openOrBuild(tmp.resolve("s.bin"), teacher, "t", windows, 8, 4)) {
        NDList top8 = small.read(m, batch);
        assertEquals(new Shape(3, seq, 8), top8.get(0).getShape());
        float[] lp = top8.get(0).toFloatArray();
        for (int i = 1; i < 8; i++) {
          assertTrue(lp[i] <= lp[i - 1], "descending log-probs");
        }
      }
    }
  }

  @Test
  void laterEpochsAndRunsRunNoTeacherForward(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(12, 9, 4);
    // 12 windows, batch 4: 3 batches an epoch, 9 steps = 3 epochs
    DistillationSpec spec = new DistillationSpec(2f, 0.7f, 9, 4, 3e-3f, 1, 0f, 1f, 0, 7L);
    Path file = tmp.resolve("topk.bin");
    DistillationDepth depth =
        new DistillationDepth(null, new DistillationDepth.TopK(16, file, "teacher-a"));
    try (Counting teacher =
            new Counting(Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu()));
        Transformer student = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      DistillationReport r =
          new Distiller(spec, new HiddenStateLossTest.NoCheckpoints(), depth)
              .distill(teacher, student, windows);
      assertEquals(3, teacher.forwards, "one teacher pass per batch of the cache build, no more");
      assertTrue(r.endLoss() < r.startLoss(), r.startLoss() + " -> " + r.endLoss());
      new Distiller(spec, new HiddenStateLossTest.NoCheckpoints(), depth)
          .distill(teacher, student, windows);
      assertEquals(3, teacher.forwards, "a second run reuses the cache");

      // another teacher identity, another k, other windows: recomputed, never reused
      new Distiller(
              spec,
              new HiddenStateLossTest.NoCheckpoints(),
              new DistillationDepth(null, new DistillationDepth.TopK(16, file, "teacher-b")))
          .distill(teacher, student, windows);
      assertEquals(6, teacher.forwards, "another teacher");
      new Distiller(
              spec,
              new HiddenStateLossTest.NoCheckpoints(),
              new DistillationDepth(null, new DistillationDepth.TopK(8, file, "teacher-b")))
          .distill(teacher, student, windows);
      assertEquals(9, teacher.forwards, "another k");
      List<int[]> other = DistillerTest.markovWindows(12, 9, 5);
      TeacherTopKCache.openOrBuild(file, teacher, "teacher-b", other, 8, 4).close();
      assertEquals(12, teacher.forwards, "other windows");

      // a flipped payload byte fails the CRC; a truncated file fails the size check
      try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
        f.seek(TeacherTopKCache.HEADER_BYTES + 100);
        int b = f.read();
        f.seek(TeacherTopKCache.HEADER_BYTES + 100);
        f.write(b ^ 0x10);
      }
      assertTrue(checkProblem(file, other).contains("CRC"), checkProblem(file, other));
      TeacherTopKCache.openOrBuild(file, teacher, "teacher-b", other, 8, 4).close();
      assertEquals(15, teacher.forwards, "corrupt payload");
      try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
        f.setLength(f.length() - 8);
      }
      assertTrue(checkProblem(file, other).contains("size"), checkProblem(file, other));
      TeacherTopKCache.openOrBuild(file, teacher, "teacher-b", other, 8, 4).close();
      assertEquals(18, teacher.forwards, "truncated");
      assertEquals(null, checkProblem(file, other));
    }
  }

  @Test
  void resumingWithTheCacheIsExact(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(12, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.7f, 6, 4, 3e-3f, 1, 0.01f, 1f, 3, 77L);
    DistillationDepth depth =
        new DistillationDepth(
            null, new DistillationDepth.TopK(12, tmp.resolve("topk.bin"), "teacher"));
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer straight = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      new Distiller(spec, new LocalCheckpointSink(tmp.resolve("a"), 2), depth)
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
            () -> new Distiller(spec, dying, depth).distill(teacher, first, windows));
      }
      try (Transformer restarted =
          Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
        DistillationReport report =
            new Distiller(spec, sink, depth).distill(teacher, restarted, windows);
        assertEquals(3, report.resumedFromStep());
        float diff = maxDifference(straight.parameters(), restarted.parameters());
        assertTrue(diff <= 1e-5f, "weights differ by " + diff);
      }
    }
  }

  @Test
  void aDirectoryRunKeepsTheCacheInItsWorkDirectoryBoundToTheWeights(@TempDir Path tmp)
      throws Exception {
    Path teacherDir;
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu())) {
      teacherDir = TestModels.write(teacher, tmp.resolve("teacher"), DType.F32);
    }
    List<int[]> windows = DistillerTest.markovWindows(8, 9, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.7f, 4, 4, 3e-3f, 1, 0f, 1f, 0, 7L);
    DistillationDepth depth =
        new DistillationDepth(null, new DistillationDepth.TopK(8, null, null));
    Path work = Files.createDirectories(tmp.resolve("work"));
    DistillationReport r =
        new Distiller(spec, new HiddenStateLossTest.NoCheckpoints(), depth)
            .distillDirectory(
                teacherDir, work, tmp.resolve("out"), 1, windows, DType.F32, Device.cpu());
    assertEquals(4, r.totalSteps());
    Path cache = work.resolve("teacher-topk.bin");
    assertTrue(Files.isRegularFile(cache));
    byte[] header =
        TeacherTopKCache.header(
            8,
            windows.size(),
            8,
            VOCAB,
            java.security.MessageDigest.getInstance("SHA-256")
                .digest(
                    TeacherTopKCache.teacherId(teacherDir)
                        .getBytes(java.nio.charset.StandardCharsets.UTF_8)),
            TeacherTopKCache.windowsHash(windows));
    assertEquals(null, TeacherTopKCache.check(cache, header));
  }

  @Test
  void refusesAKOutsideTheVocabulary(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(2, 5, 1);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(1), 1, Device.cpu())) {
      assertThrows(
          IllegalArgumentException.class,
          () -> TeacherTopKCache.openOrBuild(tmp.resolve("x"), teacher, "t", windows, 68, 2));
      assertThrows(IllegalArgumentException.class, () -> new DistillationDepth.TopK(0, null, null));
    }
  }

  private static String checkProblem(Path file, List<int[]> windows) throws Exception {
    byte[] header =
        TeacherTopKCache.header(
            8,
            windows.size(),
            windows.get(0).length - 1,
            VOCAB,
            java.security.MessageDigest.getInstance("SHA-256")
                .digest("teacher-b".getBytes(java.nio.charset.StandardCharsets.UTF_8)),
            TeacherTopKCache.windowsHash(windows));
    return TeacherTopKCache.check(file, header);
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

  /** A teacher that counts its forward passes. */
  private static final class Counting implements CausalLM {
    final Transformer model;
    int forwards;

    Counting(Transformer model) {
      this.model = model;
    }

    @Override
    public int vocabSize() {
      return model.vocabSize();
    }

    @Override
    public int maxSequenceLength() {
      return model.maxSequenceLength();
    }

    @Override
    public NDArray logits(NDManager manager, NDArray tokens) {
      forwards++;
      return model.logits(manager, tokens);
    }

    @Override
    public NDArray logitsWithHidden(NDManager manager, NDArray tokens, List<NDArray> hidden) {
      forwards++;
      return model.logitsWithHidden(manager, tokens, hidden);
    }

    @Override
    public Decoder decoder(NDManager manager, int batch) {
      throw new UnsupportedOperationException(Arrays.toString(new int[0]));
    }

    @Override
    public void close() {
      model.close();
    }
  }
}
