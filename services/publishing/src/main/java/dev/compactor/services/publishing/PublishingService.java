package dev.compactor.services.publishing;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageService;

/**
 * The publishing service. Settings come from the environment ({@code COMPACTOR_*}, see {@code
 * StageConfig}); set {@code COMPACTOR_STAGE=publish}.
 */
public final class PublishingService {
  private PublishingService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageConfig config = StageConfig.fromEnvironment();
    boolean ok = StageService.run(new PublishingStage(BlobStore.create(config)), config);
    System.exit(ok ? 0 : 1);
  }
}
