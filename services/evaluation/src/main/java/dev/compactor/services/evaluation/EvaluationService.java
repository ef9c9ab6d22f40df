package dev.compactor.services.evaluation;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.BlobStore;
import dev.compactor.runtime.StageConfig;
import dev.compactor.runtime.StageService;

/**
 * The evaluation service; its reports go to the artifact bucket for the publish step. Settings come
 * from the environment ({@code COMPACTOR_*}, see {@code StageConfig}); set {@code
 * COMPACTOR_STAGE=evaluate}.
 */
public final class EvaluationService {
  private EvaluationService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageConfig config = StageConfig.fromEnvironment();
    BlobStore blobs = BlobStore.create(config);
    boolean ok =
        StageService.run(
            new EvaluationStage(
                (where, json) -> blobs.putBytes(where, json, "application/json"),
                EvaluationStage.DEFAULT_MAX_CHARS),
            config);
    System.exit(ok ? 0 : 1);
  }
}
