package dev.compactor.e2e;

import dev.compactor.cli.pipeline.PipelineStack;
import java.io.IOException;
import java.nio.file.Path;

/** The pipeline on the embedded Kafka, S3 server and schema registry (no Docker needed). */
final class EmbeddedEnvironment implements PipelineEnvironment {
  private final PipelineStack stack;

  EmbeddedEnvironment(Path dir) throws IOException {
    // the scenarios write their models next to the data dir, not in it
    this.stack =
        PipelineStack.start(
            dir, 0, PipelineStack.Workers.IN_PROCESS, java.util.List.of(dir.getParent()));
  }

  @Override
  public PipelineStack stack() {
    return stack;
  }

  @Override
  public void close() {
    stack.close();
  }
}
