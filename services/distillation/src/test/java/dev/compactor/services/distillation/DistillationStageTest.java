package dev.compactor.services.distillation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.model.Transformer;
import dev.compactor.infra.EmbeddedS3;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.S3Uri;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DistillationStageTest {
  @TempDir Path tmp;

  private static final String PARAMS =
      "{\"keep_layers\":1,\"steps\":4,\"lr\":0.001,\"checkpoint_every\":2,"
          + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":4,\"seq_len\":16}}";

  @Test
  void aRunAbandonedMidwayIsResumedByTheNextAndFinishes() throws Exception {
    Path teacher = TestModels.randomLlama(tmp.resolve("teacher2"), 2, 8);
    Path ckpts = tmp.resolve("ckpts2");
    LocalCheckpointSink local = new LocalCheckpointSink(ckpts, 1);
    CheckpointSink abandonAfterFirst =
        new CheckpointSink() {
          @Override
          public void save(long step, Path directory) throws java.io.IOException {
            if (step > 2) {
              throw new java.util.concurrent.CancellationException("taken away at step " + step);
            }
            local.save(step, directory);
          }

          @Override
          public Optional<Checkpoint> latest() throws java.io.IOException {
            return local.latest();
          }
        };
    Exception e =
        org.junit.jupiter.api.Assertions.assertThrows(
            Exception.class, () -> run(teacher, abandonAfterFirst, "abandoned"));
    assertTrue(e.toString().contains("taken away at step 4"), e.toString());
    StageResult r = run(teacher, local, "successor");
    assertEquals(2.0, r.metrics().get("resumedFromStep"));
    try (Transformer student = Transformer.load(r.outputDir(), Device.cpu())) {
      assertEquals(1, student.config().numLayers());
    }
  }

  private StageResult run(Path teacher, Path ckpts, String name) throws Exception {
    return run(teacher, new LocalCheckpointSink(ckpts, 1), name);
  }

  private StageResult run(Path teacher, CheckpointSink sink, String name) throws Exception {
    StageContext ctx =
        StageContext.builder(TestModels.request("distill", PARAMS).build())
            .inputDir(teacher)
            .outputDir(Files.createDirectories(tmp.resolve(name + "-out")))
            .workDir(Files.createDirectories(tmp.resolve(name + "-work")))
            .build();
    // on a fresh thread, as the worker runs jobs: PyTorch's grad mode is per thread
    ExecutorService thread = Executors.newSingleThreadExecutor();
    try {
      return thread.submit(() -> new DistillationStage(c -> sink).run(ctx)).get();
    } finally {
      thread.shutdown();
    }
  }

  /** Issue 8: a fresh JVM's first distill step failed with UnsatisfiedLinkError, forever. */
  @Test
  void aDistillStepIsTheFirstThingAFreshJvmCanDo() throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process p =
        new ProcessBuilder(
                java.toString(),
                "-cp",
                System.getProperty("java.class.path"),
                "-Dai.djl.offline=true",
                FreshJvmDistill.class.getName(),
                tmp.resolve("fresh").toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes());
    assertEquals(0, p.waitFor(), out);
    assertTrue(out.contains("distilled 1 layers"), out);
  }

  @Test
  void trainsAOneLayerStudentAndResumesFromItsCheckpoint() throws Exception {
    Path teacher = TestModels.randomLlama(tmp.resolve("teacher"), 3, 4);
    Path ckpts = tmp.resolve("ckpts");
    StageResult r = run(teacher, ckpts, "first");
    assertEquals(3.0, r.metrics().get("teacherLayers"));
    assertEquals(1.0, r.metrics().get("studentLayers"));
    assertEquals(0.0, r.metrics().get("resumedFromStep"));
    assertEquals(2.0, r.metrics().get("checkpoints"));
    try (Transformer student = Transformer.load(r.outputDir(), Device.cpu())) {
      assertEquals(1, student.config().numLayers());
    }
    assertTrue(Files.exists(r.outputDir().resolve("tokenizer.json")));
    StageResult again = run(teacher, ckpts, "second");
    assertEquals(4.0, again.metrics().get("resumedFromStep"));
  }

  @Test
  void s3SinkKeepsTheLatestWholeCheckpoint() throws Exception {
    try (EmbeddedS3 s3 = EmbeddedS3.start(tmp.resolve("s3"))) {
      BlobStore blobs =
          BlobStore.create(
              StageConfig.of(
                  Map.of(
                      "COMPACTOR_STAGE", "distill",
                      "COMPACTOR_S3_ENDPOINT", s3.endpoint().toString(),
                      "COMPACTOR_S3_ACCESS_KEY", s3.accessKey(),
                      "COMPACTOR_S3_SECRET_KEY", s3.secretKey())));
      blobs.ensureBucket("ckpt");
      CheckpointSink sink =
          new S3CheckpointSink(
              blobs, new S3Uri("ckpt", "job/step-2/"), tmp.resolve("local"), () -> {});
      assertTrue(sink.latest().isEmpty());
      for (long step : new long[] {10, 20}) {
        Path dir = Files.createDirectories(tmp.resolve("c" + step));
        Files.writeString(dir.resolve("state.txt"), "step " + step);
        sink.save(step, dir);
      }
      Optional<CheckpointSink.Checkpoint> latest = sink.latest();
      assertEquals(20, latest.orElseThrow().step());
      assertEquals("step 20", Files.readString(latest.get().directory().resolve("state.txt")));
      assertTrue(blobs.list(new S3Uri("ckpt", "job/step-2/step-10/")).isEmpty());
    }
  }
}
