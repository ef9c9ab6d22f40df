package dev.compactor.e2e;

import java.nio.file.Path;

/** The end-to-end scenarios on the embedded stack (always runs). */
class EmbeddedPipelineIT extends PipelineScenarios {
  @Override
  PipelineEnvironment start(Path dir) throws Exception {
    return new EmbeddedEnvironment(dir);
  }
}
