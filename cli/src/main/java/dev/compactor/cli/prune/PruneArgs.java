package dev.compactor.cli.prune;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.recipe.StepMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * What the {@code prune} command lines share, whatever they prune: the calibration text options,
 * the model and output directory checks, and the list of written files in the JSON summary.
 */
final class PruneArgs {

  private PruneArgs() {}

  /**
   * {@code --calibration FILE --samples N --seq-len N}, checked.
   *
   * @param file the text, or null for the bundled Europarl training text
   */
  record Calibration(Path file, int samples, int seqLen) {}

  static Calibration calibration(Args args) throws UsageException {
    Path file = args.present("calibration") ? Path.of(args.required("calibration")) : null;
    if (file != null && !Files.isRegularFile(file)) {
      throw new UsageException("--calibration: expected a text file, found none at " + file);
    }
    int samples = args.integer("samples", StepMemory.PRUNE_DEFAULT_SAMPLES);
    if (samples < 1) {
      throw new UsageException("--samples must be at least 1, found " + samples);
    }
    int seqLen = args.integer("seq-len", StepMemory.PRUNE_DEFAULT_SEQ_LEN);
    if (seqLen < 2) {
      throw new UsageException("--seq-len must be at least 2, found " + seqLen);
    }
    return new Calibration(file, samples, seqLen);
  }

  /** {@code --out DIR}, which must be absent or empty. */
  static Path emptyOut(Args args) throws UsageException, IOException {
    Path out = args.requiredPath("out");
    if (Files.exists(out)) {
      try (var entries = Files.list(out)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + out + " must be absent or empty");
        }
      }
    }
    return out;
  }

  static void requireModelDir(Path model) throws UsageException {
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
  }

  /** Adds every regular file under {@code dir} (path relative to it, bytes) to {@code files}. */
  static void listFiles(ArrayNode files, Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk.sorted()::iterator) {
        if (Files.isRegularFile(p)) {
          files.addObject().put("path", dir.relativize(p).toString()).put("bytes", Files.size(p));
        }
      }
    }
  }
}
