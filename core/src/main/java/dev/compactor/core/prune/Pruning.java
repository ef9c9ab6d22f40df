package dev.compactor.core.prune;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;

/**
 * The pruning stage in one call: runs the pruner the spec names on a Hugging Face model directory
 * and writes the pruned directory. Calibration text is only tokenized when the method needs it.
 */
public final class Pruning {

  /** Windows per calibration forward pass. */
  public static final int CALIBRATION_BATCH = 8;

  /** Windows per SparseGPT layer pass (the layer-wise calibration holds every window's states). */
  public static final int SPARSEGPT_BATCH = 4;

  private Pruning() {}

  /**
   * Prunes {@code inputDir} into {@code outputDir} (absent or empty).
   *
   * @param calibration token windows of the recipe's calibration text, all of one length; asked for
   *     only by Wanda and SparseGPT
   * @param device where Wanda's calibration passes run (SparseGPT's layer-wise calibration runs on
   *     the CPU)
   */
  public static PruningReport run(
      PruningSpec spec,
      Path inputDir,
      Path outputDir,
      Supplier<List<int[]>> calibration,
      Device device)
      throws IOException {
    return switch (spec.method()) {
      case MAGNITUDE -> new MagnitudePruner(spec).prune(inputDir, outputDir);
      case WANDA ->
          new WandaPruner(spec)
              .prune(inputDir, outputDir, calibration.get(), CALIBRATION_BATCH, device);
      case SPARSEGPT ->
          new SparseGptPruner(spec).prune(inputDir, outputDir, calibration.get(), SPARSEGPT_BATCH);
    };
  }
}
