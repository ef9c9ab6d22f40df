package dev.compactor.services.pruning;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.StageService;

/**
 * The pruning service (magnitude and Wanda unstructured sparsity). Settings come from the
 * environment ({@code COMPACTOR_*}, see {@code StageConfig}); set {@code COMPACTOR_STAGE=prune}.
 */
public final class PruningService {
  private PruningService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageService.run(new PruningStage());
  }
}
