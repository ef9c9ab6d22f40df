package dev.compactor.core.quant.calib;

import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Path;

/**
 * The model the quality test quantizes: {@code -Dcompactor.quality.modelDir}, else the tiny
 * reference model that ships in the repository ({@code models/tiny-llama-v1}: hidden 128, 4 layers,
 * intermediate 512, context 256). It used to be a 2-layer model trained here for 300 steps (about 3
 * minutes, far more on a busy machine); the shipped build is as reproducible and costs nothing to
 * obtain.
 */
final class QuickModel {

  private QuickModel() {}

  static Path resolve() {
    String override = System.getProperty("compactor.quality.modelDir");
    return override != null ? Path.of(override) : TinyReferenceModel.shipped();
  }
}
