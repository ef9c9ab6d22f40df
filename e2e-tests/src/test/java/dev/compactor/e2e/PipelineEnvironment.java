package dev.compactor.e2e;

import dev.compactor.cli.pipeline.PipelineStack;

/**
 * Where an end-to-end test's pipeline runs: the embedded stack, or real images under
 * Testcontainers. Either way the orchestrator and the stage workers run in the test JVM against it,
 * so a test can add and stop workers.
 */
interface PipelineEnvironment extends AutoCloseable {
  /** The running pipeline. */
  PipelineStack stack();

  @Override
  void close();
}
