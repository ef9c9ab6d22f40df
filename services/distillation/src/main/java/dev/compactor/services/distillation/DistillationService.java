package dev.compactor.services.distillation;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageService;

/**
 * The distillation service; its checkpoints go to the artifact bucket so another worker can resume
 * a job. Settings come from the environment ({@code COMPACTOR_*}, see {@code StageConfig}); set
 * {@code COMPACTOR_STAGE=distill}.
 */
public final class DistillationService {
  private DistillationService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageConfig config = StageConfig.fromEnvironment();
    BlobStore blobs = BlobStore.create(config);
    boolean ok =
        StageService.run(
            DistillationStage.withS3Checkpoints(blobs, config.get(StageConfig.S3_BUCKET)), config);
    System.exit(ok ? 0 : 1);
  }
}
