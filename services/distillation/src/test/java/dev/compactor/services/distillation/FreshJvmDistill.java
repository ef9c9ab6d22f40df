package dev.compactor.services.distillation;

import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.services.testkit.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Runs one distillation step as the very first thing a JVM does, the way a freshly started
 * distillation service meets its first job: nothing has loaded the PyTorch engine yet. Exit code 0
 * and "distilled N layers" on stdout when it worked.
 */
public final class FreshJvmDistill {
  private FreshJvmDistill() {}

  public static void main(String[] args) throws Exception {
    Path tmp = Path.of(args[0]);
    Path teacher = TestModels.randomLlama(tmp.resolve("teacher"), 2, 5);
    StageContext ctx =
        StageContext.builder(
                TestModels.request(
                        "distill",
                        "{\"keep_layers\":1,\"steps\":2,\"lr\":0.001,\"checkpoint_every\":2,"
                            + "\"calibration\":{\"dataset\":\"builtin:europarl\",\"samples\":2,"
                            + "\"seq_len\":8}}")
                    .build())
            .inputDir(teacher)
            .outputDir(Files.createDirectories(tmp.resolve("out")))
            .workDir(Files.createDirectories(tmp.resolve("work")))
            .build();
    StageResult r =
        new DistillationStage(c -> new LocalCheckpointSink(tmp.resolve("ckpt"), 1)).run(ctx);
    System.out.println("distilled " + r.metrics().get("studentLayers").intValue() + " layers");
  }
}
