package dev.compactor.services.factorization;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.StageService;

/**
 * The factorization service (low-rank SVD and SVD-LLM of the decoder linears). Settings come from
 * the environment ({@code COMPACTOR_*}, see {@code StageConfig}); set {@code
 * COMPACTOR_STAGE=factorize}.
 */
public final class FactorizationService {
  private FactorizationService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageService.run(new FactorizationStage());
  }
}
