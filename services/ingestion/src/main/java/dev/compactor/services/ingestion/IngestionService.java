package dev.compactor.services.ingestion;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.StageService;

/**
 * The ingestion service: validates submitted model directories and stores them as baseline
 * artifacts. Settings come from the environment ({@code COMPACTOR_*}, see {@code StageConfig}); set
 * {@code COMPACTOR_STAGE=ingestion}.
 */
public final class IngestionService {
  private IngestionService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageService.run(new IngestionStage());
  }
}
