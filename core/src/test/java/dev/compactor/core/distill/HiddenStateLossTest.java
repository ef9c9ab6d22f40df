package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

class HiddenStateLossTest {

  private static final Logger LOG = LoggerFactory.getLogger(HiddenStateLossTest.class);

  @Test
  void valueAndGradientsMatchPyTorch() throws Exception {
    JsonNode doc = golden();
    for (JsonNode c : doc.get("hidden")) {
      long batch = c.get("shape").get(0).asLong();
      long seq = c.get("shape").get(1).asLong();
      long sw = c.get("student_width").asLong();
      long tw = c.get("teacher_width").asLong();
      int pairs = c.get("pairs").size();
      int[] sl = new int[pairs];
      int[] tl = new int[pairs];
      for (int p = 0; p < pairs; p++) {
        sl[p] = c.get("pairs").get(p).get(0).asInt();
        tl[p] = c.get("pairs").get(p).get(1).asInt();
      }
      HiddenStateLoss.Kind kind = HiddenStateLoss.Kind.parse(c.get("kind").asText());
      try (NDManager m = NDManager.newBaseManager();
          HiddenStateLoss loss =
              new HiddenStateLoss(m, kind, (float) c.get("beta").asDouble(), sl, tl, sw, tw, 1L)) {
        List<NDArray> student = new ArrayList<>();
        for (JsonNode s : c.get("student")) {
          NDArray a = m.create(floats(s), new Shape(batch, seq, sw));
          a.setRequiresGradient(true);
          student.add(a);
        }
        List<NDArray> teacher = new ArrayList<>();
        for (JsonNode t : c.get("teacher")) {
          teacher.add(m.create(floats(t), new Shape(batch, seq, tw)));
        }
        assertEquals(c.get("projections").size(), loss.projections().size(), "projections");
        c.get("projections")
            .fields()
            .forEachRemaining(
                e -> {
                  NDArray w =
                      loss.projections().get(HiddenStateLoss.PROJECTION_PREFIX + e.getKey());
                  w.set(floats(e.getValue()));
                  w.setRequiresGradient(true);
                });
        NDArray mask =
            c.get("masked").asBoolean()
                ? m.create(floats(c.get("mask")), new Shape(batch, seq))
                : null;
        NDArray value;
        try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          value = loss.compute(student, teacher, mask);
          System.gc();
          gc.backward(value);
        }
        String name = c.get("kind").asText() + " " + sw + "->" + tw;
        assertEquals(c.get("loss").asDouble(), value.getFloat(), 1e-5, name + " loss");
        for (int j = 0; j < student.size(); j++) {
          assertClose(floats(c.get("student_grad").get(j)), student.get(j).getGradient(), name);
        }
        c.get("projection_grad")
            .fields()
            .forEachRemaining(
                e ->
                    assertClose(
                        floats(e.getValue()),
                        loss.projections()
                            .get(HiddenStateLoss.PROJECTION_PREFIX + e.getKey())
                            .getGradient(),
                        name + " projection"));
      }
    }
  }

  @Test
  void evenlySpacedMatchesTheLastLayers() {
    assertArrayEquals(new int[] {1, 3, 5, 7}, HiddenStateLoss.evenlySpaced(4, 8));
    assertArrayEquals(new int[] {3}, HiddenStateLoss.evenlySpaced(1, 4));
    assertArrayEquals(new int[] {0, 1, 2}, HiddenStateLoss.evenlySpaced(3, 3));
  }

  @Test
  void aStudentThatIsTheTeacherHasZeroHiddenLoss() throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(4, 9, 3);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(3), 1, Device.cpu());
        Transformer student = Transformer.randomInit(TestModels.tinyLlama(3), 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      for (HiddenStateLoss.Kind kind : HiddenStateLoss.Kind.values()) {
        try (HiddenStateLoss loss =
            new HiddenStateLoss(m, kind, 1f, new int[] {0, 1, 2}, new int[] {0, 1, 2}, 32, 32, 1)) {
          double value = hiddenLoss(loss, teacher, Trainable.of(student), windows);
          assertEquals(0.0, value, 1e-6, kind + " loss of identical models");
        }
      }
      // ... and a different model does not
      try (Transformer other = Transformer.randomInit(TestModels.tinyLlama(3), 2, Device.cpu());
          HiddenStateLoss loss =
              new HiddenStateLoss(
                  m, HiddenStateLoss.Kind.MSE, 1f, new int[] {2}, new int[] {2}, 32, 32, 1)) {
        assertTrue(hiddenLoss(loss, teacher, Trainable.of(other), windows) > 1e-4);
      }
    }
  }

  @Test
  void everyForwardHandsBackTheSameLayerOutputs(@TempDir Path tmp) throws Exception {
    int[] w = DistillerTest.markovWindows(1, 9, 3).get(0);
    try (Transformer model = Transformer.randomInit(TestModels.tinyLlama(3), 1, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      Path dir = TestModels.write(model, tmp.resolve("m"), dev.compactor.core.io.DType.F32);
      NDArray in = m.create(java.util.Arrays.copyOf(w, 8), new Shape(1, 8));
      List<NDArray> eval = new ArrayList<>();
      NDArray logits = model.logitsWithHidden(m, in, eval);
      List<NDArray> train = new ArrayList<>();
      model.forward(m, in, null, train);
      List<NDArray> streamed = new ArrayList<>();
      try (dev.compactor.core.model.StreamingTransformer s =
          dev.compactor.core.model.StreamingTransformer.open(dir, Device.cpu())) {
        s.logitsWithHidden(m, in, streamed);
      }
      assertEquals(3, eval.size());
      assertEquals(new Shape(1, 8, 32), eval.get(2).getShape());
      for (int i = 0; i < 3; i++) {
        assertClose(eval.get(i).toFloatArray(), train.get(i), "train layer " + i);
        assertClose(eval.get(i).toFloatArray(), streamed.get(i), "streamed layer " + i);
      }
      assertClose(model.logits(m, in).toFloatArray(), logits, "logits");
      // the last layer's output through the final norm and the head gives the logits
      NDArray x = eval.get(2);
      NDArray rms = x.square().mean(new int[] {2}, true).add(m.create(1e-5f)).sqrt();
      NDArray normed = x.div(rms).mul(model.parameters().get("model.norm.weight"));
      NDArray head =
          model
              .parameters()
              .getOrDefault("lm_head.weight", model.parameters().get("model.embed_tokens.weight"));
      assertClose(logits.toFloatArray(), normed.matMul(head.transpose()), "head of last layer");
    }
  }

  @Test
  void hiddenLossFallsWithTraining() throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(16, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 30, 4, 3e-3f, 2, 0f, 1f, 0, 5L);
    for (HiddenStateLoss.Kind kind : HiddenStateLoss.Kind.values()) {
      try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(4), 1, Device.cpu());
          Transformer student = Transformer.randomInit(TestModels.tinyLlama(2), 2, Device.cpu());
          NDManager m = NDManager.newBaseManager();
          HiddenStateLoss probe =
              new HiddenStateLoss(m, kind, 1f, new int[] {0, 1}, new int[] {1, 3}, 32, 32, 1)) {
        double before = hiddenLoss(probe, teacher, Trainable.of(student), windows);
        // random-init residual streams are small (~0.02 per entry): a large beta lets the hidden
        // term dominate the KD term, so the test sees the hidden loss itself fall
        float beta = kind == HiddenStateLoss.Kind.MSE ? 1000f : 10f;
        DistillationDepth depth =
            new DistillationDepth(new DistillationDepth.Hidden(kind, beta, null), null);
        new Distiller(spec, new NoCheckpoints(), depth).distill(teacher, student, windows);
        double after = hiddenLoss(probe, teacher, Trainable.of(student), windows);
        LOG.info("{} hidden loss {} -> {}", kind, before, after);
        assertTrue(after < 0.7 * before, kind + ": hidden loss " + before + " -> " + after);
      }
    }
  }

  @Test
  void aNarrowerStudentTrainsThroughALearnedProjection() throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(16, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 30, 4, 3e-3f, 2, 0f, 1f, 0, 5L);
    ModelConfig narrow = ModelConfig.llama(67, 16, 24, 2, 2, 1, 64);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(4), 1, Device.cpu());
        Transformer student = Transformer.randomInit(narrow, 2, Device.cpu())) {
      DistillationDepth depth =
          new DistillationDepth(
              new DistillationDepth.Hidden(HiddenStateLoss.Kind.MSE, 1000f, new int[] {1, 3}),
              null);
      DistillationReport r =
          new Distiller(spec, new NoCheckpoints(), depth).distill(teacher, student, windows);
      LOG.info("narrow student with projections: loss {} -> {}", r.startLoss(), r.endLoss());
      assertTrue(r.endLoss() < 0.8 * r.startLoss(), r.startLoss() + " -> " + r.endLoss());
      // the projections are not part of the saved student
      assertTrue(
          student.parameters().keySet().stream()
              .noneMatch(n -> n.startsWith(HiddenStateLoss.PROJECTION_PREFIX)));
    }
  }

  @Test
  void resumingWithLearnedProjectionsIsExact(@TempDir Path tmp) throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(12, 17, 4);
    DistillationSpec spec = new DistillationSpec(2f, 0.7f, 6, 4, 3e-3f, 1, 0.01f, 1f, 3, 77L);
    ModelConfig narrow = ModelConfig.llama(67, 16, 24, 2, 2, 1, 64);
    DistillationDepth depth =
        new DistillationDepth(
            new DistillationDepth.Hidden(HiddenStateLoss.Kind.MSE, 100f, new int[] {0, 1}), null);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer straight = Transformer.randomInit(narrow, 2, Device.cpu())) {
      new Distiller(spec, new LocalCheckpointSink(tmp.resolve("a"), 2), depth)
          .distill(teacher, straight, windows);
      LocalCheckpointSink sink = new LocalCheckpointSink(tmp.resolve("b"), 2);
      CheckpointSink dying =
          new CheckpointSink() {
            @Override
            public void save(long step, Path directory) throws java.io.IOException {
              sink.save(step, directory);
              throw new IllegalStateException("worker killed after step " + step);
            }

            @Override
            public Optional<Checkpoint> latest() throws java.io.IOException {
              return sink.latest();
            }
          };
      try (Transformer first = Transformer.randomInit(narrow, 2, Device.cpu())) {
        assertThrows(
            IllegalStateException.class,
            () -> new Distiller(spec, dying, depth).distill(teacher, first, windows));
      }
      try (Transformer restarted = Transformer.randomInit(narrow, 2, Device.cpu())) {
        DistillationReport r =
            new Distiller(spec, sink, depth).distill(teacher, restarted, windows);
        assertEquals(3, r.resumedFromStep());
        float max = 0;
        for (var e : straight.parameters().entrySet()) {
          float[] x = e.getValue().toFloatArray();
          float[] y = restarted.parameters().get(e.getKey()).toFloatArray();
          for (int i = 0; i < x.length; i++) {
            max = Math.max(max, Math.abs(x[i] - y[i]));
          }
        }
        assertTrue(max <= 1e-5f, "weights differ by " + max + " (projections not restored?)");
      }
    }
  }

  @Test
  void refusesBadLayerMaps() throws Exception {
    List<int[]> windows = DistillerTest.markovWindows(4, 9, 3);
    DistillationSpec spec = DistillationSpec.defaults(2, 2, 0);
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(2), 1, Device.cpu());
        Transformer student = Transformer.randomInit(TestModels.tinyLlama(1), 2, Device.cpu())) {
      for (int[] map : new int[][] {{2}, {0, 1}, {-1}}) {
        DistillationDepth depth =
            new DistillationDepth(
                new DistillationDepth.Hidden(HiddenStateLoss.Kind.MSE, 1f, map), null);
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new Distiller(spec, new NoCheckpoints(), depth).distill(teacher, student, windows));
      }
    }
    assertThrows(IllegalArgumentException.class, () -> HiddenStateLoss.Kind.parse("l1"));
    assertThrows(
        UnsupportedOperationException.class,
        () ->
            new DistillationDepth(
                new DistillationDepth.Hidden(HiddenStateLoss.Kind.MSE, 1f, null),
                new DistillationDepth.TopK(8, Path.of("x"), "t")));
  }

  /** Mean hidden loss of {@code student} against {@code teacher} over {@code windows}. */
  static double hiddenLoss(
      HiddenStateLoss loss, Transformer teacher, Trainable student, List<int[]> windows) {
    double sum = 0;
    for (int[] w : windows) {
      try (NDManager m = NDManager.newBaseManager()) {
        NDArray in = m.create(java.util.Arrays.copyOf(w, w.length - 1), new Shape(1, w.length - 1));
        List<NDArray> th = new ArrayList<>();
        teacher.logitsWithHidden(m, in, th);
        List<NDArray> sh = new ArrayList<>();
        student.forward(m, in, sh);
        sum += loss.compute(sh, th, null).getFloat();
      }
    }
    return sum / windows.size();
  }

  static final class NoCheckpoints implements CheckpointSink {
    @Override
    public void save(long step, Path directory) {}

    @Override
    public Optional<Checkpoint> latest() {
      return Optional.empty();
    }
  }

  private static void assertArrayEquals(int[] expected, int[] actual) {
    org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual);
  }

  private static void assertClose(float[] expected, NDArray actual, String name) {
    float[] a = actual.toFloatArray();
    assertEquals(expected.length, a.length, name + " gradient size");
    for (int i = 0; i < a.length; i++) {
      assertEquals(expected[i], a[i], 1e-5, name + " grad[" + i + "]");
    }
  }

  static JsonNode golden() throws Exception {
    try (InputStream in =
        HiddenStateLossTest.class.getResourceAsStream("/distill/hidden_loss_golden.json")) {
      JsonNode doc = new ObjectMapper().readTree(in);
      assertEquals("compactor-hidden-golden", doc.get("magic").asText());
      assertEquals(1, doc.get("version").asInt());
      return doc;
    }
  }

  static float[] floats(JsonNode a) {
    float[] f = new float[a.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) a.get(i).asDouble();
    }
    return f;
  }
}
