package dev.compactor.services.quantization;

import dev.compactor.core.engine.TorchThreads;
import dev.compactor.runtime.StageService;

/**
 * The quantization service. Settings come from the environment ({@code COMPACTOR_*}, see {@code
 * StageConfig}); set {@code COMPACTOR_STAGE=quantize}.
 */
public final class QuantizationService {
  private QuantizationService() {}

  public static void main(String[] args) {
    TorchThreads.configure();
    StageService.run(new QuantizationStage());
  }
}
