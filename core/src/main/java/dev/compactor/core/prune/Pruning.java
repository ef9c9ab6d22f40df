package dev.compactor.core.prune;

import ai.djl.Device;
import dev.compactor.core.io.SparseBitmask;
import dev.compactor.core.quant.export.SparseCheckpointWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

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
    return run(spec, PruningOutput.DENSE, inputDir, outputDir, calibration, device);
  }

  /**
   * Prunes {@code inputDir} into {@code outputDir} stored as {@code output} says: dense (with
   * SparseGPT's joint quantization when it has {@code wbits}), or a sparse compressed-tensors
   * format written from the pruned weights tensor by tensor ({@link SparseCheckpointWriter}).
   */
  public static PruningReport run(
      PruningSpec spec,
      PruningOutput output,
      Path inputDir,
      Path outputDir,
      Supplier<List<int[]>> calibration,
      Device device)
      throws IOException {
    output.check(spec);
    if (output.format() == PruningOutput.Format.DENSE) {
      return output.wbits() == 0
          ? runDense(spec, inputDir, outputDir, calibration, device)
          : new SparseGptPruner(spec, output)
              .prune(inputDir, outputDir, calibration.get(), SPARSEGPT_BATCH);
    }
    if (Files.exists(outputDir) && !PruningPipeline.isEmptyDir(outputDir)) {
      throw new IOException("output directory " + outputDir + " must be empty or absent");
    }
    Path dense = denseScratch(outputDir);
    try {
      PruningReport report = runDense(spec, inputDir, dense, calibration, device);
      writeSparse(output, dense, outputDir);
      return report;
    } finally {
      deleteTree(dense);
    }
  }

  /**
   * A fresh path (absent) next to {@code outputDir} for the dense pruned model a sparse format is
   * written from; the caller deletes it with {@link #deleteTree}.
   */
  public static Path denseScratch(Path outputDir) throws IOException {
    Path parent = outputDir.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    Path dense = Files.createTempDirectory(parent, ".pruned-dense-");
    Files.delete(dense);
    return dense;
  }

  /** Writes the dense pruned model {@code denseDir} into {@code outputDir} in a sparse format. */
  public static SparseCheckpointWriter.Result writeSparse(
      PruningOutput output, Path denseDir, Path outputDir) throws IOException {
    if (output.format() == PruningOutput.Format.DENSE) {
      throw new IllegalArgumentException("format dense is written by the pruners themselves");
    }
    return SparseCheckpointWriter.write(
        denseDir,
        outputDir,
        output.format() == PruningOutput.Format.SPARSE_24_BITMASK
            ? SparseBitmask.Structure.TWO_FOUR
            : SparseBitmask.Structure.UNSTRUCTURED);
  }

  private static PruningReport runDense(
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

  /** Deletes {@code dir} and everything under it, if it exists. */
  public static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
