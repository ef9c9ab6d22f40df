package dev.compactor.core.io;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Opens the weights of a checkpoint wherever they are: a single {@code model.safetensors}, a
 * sharded set described by {@code model.safetensors.index.json}, the only {@code *.safetensors}
 * file in a directory, or a {@code .safetensors} file given directly. Pickle checkpoints are
 * refused with an explanation; they are never opened. A directory whose config.json declares a
 * sparse compressed-tensors format is read through {@link SparseBitmaskSource}, one in the {@link
 * Codebook} format through {@link CodebookSource} (dense tensors both); one with cross-layer shared
 * tensors through {@link SharedTensorSource} (each reference served as its owner's copy).
 */
public final class Checkpoints {

  static final String SINGLE = "model.safetensors";
  static final String INDEX = "model.safetensors.index.json";

  /** Extensions of pickle-based checkpoints (PyTorch {@code torch.save}, Lightning, joblib). */
  static final Set<String> PICKLE_EXTENSIONS = Set.of(".bin", ".pt", ".pth", ".pkl", ".ckpt");

  private Checkpoints() {}

  /**
   * Opens the weights in {@code modelDirOrFile}; the caller closes the returned source.
   *
   * @throws CheckpointFormatException if no safetensors weights are there, only pickle files are,
   *     several unindexed safetensors files compete, or any file or index breaks its format
   */
  public static TensorSource open(Path modelDirOrFile) throws IOException {
    TensorSource stored = openStored(modelDirOrFile);
    if (!Files.isDirectory(modelDirOrFile)) {
      return stored;
    }
    try {
      return SparseBitmaskSource.wrapIfSparse(
          modelDirOrFile,
          CodebookSource.wrapIfCodebook(
              modelDirOrFile, SharedTensorSource.wrapIfShared(modelDirOrFile, stored)));
    } catch (IOException | RuntimeException e) {
      stored.close();
      throw e;
    }
  }

  /**
   * The weights of {@code modelDirOrFile} as stored, without decoding a sparse compressed-tensors
   * checkpoint ({@link SparseBitmaskSource}).
   */
  public static TensorSource openStored(Path modelDirOrFile) throws IOException {
    if (Files.isRegularFile(modelDirOrFile)) {
      String name = modelDirOrFile.getFileName().toString();
      if (isPickle(name)) {
        throw pickleRefused(List.of(modelDirOrFile));
      }
      if (name.endsWith(".index.json")) {
        return ShardedTensorSource.open(modelDirOrFile);
      }
      return SafetensorsFile.open(modelDirOrFile);
    }
    if (!Files.isDirectory(modelDirOrFile)) {
      throw new CheckpointFormatException(
          modelDirOrFile + ": expected a model directory or a .safetensors file, found nothing");
    }
    Path dir = modelDirOrFile;
    Path single = dir.resolve(SINGLE);
    if (Files.exists(single, LinkOption.NOFOLLOW_LINKS)) {
      return SafetensorsFile.open(insideDir(dir, single));
    }
    Path index = dir.resolve(INDEX);
    if (Files.exists(index, LinkOption.NOFOLLOW_LINKS)) {
      return ShardedTensorSource.open(insideDir(dir, index));
    }
    List<Path> safetensors = new ArrayList<>();
    List<Path> pickles = new ArrayList<>();
    listWeightFiles(dir, safetensors, pickles);
    if (safetensors.size() == 1) {
      return SafetensorsFile.open(insideDir(dir, safetensors.get(0)));
    }
    if (safetensors.size() > 1) {
      throw new CheckpointFormatException(
          dir
              + ": expected model.safetensors, "
              + INDEX
              + " or exactly one *.safetensors file, found "
              + safetensors.size()
              + " safetensors files without an index: "
              + fileNames(safetensors));
    }
    if (!pickles.isEmpty()) {
      throw pickleRefused(pickles);
    }
    throw new CheckpointFormatException(
        dir + ": expected model.safetensors or " + INDEX + ", found no weight files");
  }

  /** Sorted weight files directly in {@code dir}: safetensors and pickle ones, split. */
  static void listWeightFiles(Path dir, List<Path> safetensors, List<Path> pickles)
      throws IOException {
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        if (name.endsWith(".safetensors")) {
          safetensors.add(p);
        } else if (isPickle(name)) {
          pickles.add(p);
        }
      }
    }
    safetensors.sort(null);
    pickles.sort(null);
  }

  static boolean isPickle(String fileName) {
    String lower = fileName.toLowerCase(Locale.ROOT);
    for (String ext : PICKLE_EXTENSIONS) {
      if (lower.endsWith(ext)) {
        return true;
      }
    }
    return false;
  }

  /** The refusal every entry point gives for pickle weights: why, and how to convert. */
  static CheckpointFormatException pickleRefused(List<Path> files) {
    return new CheckpointFormatException(
        "expected safetensors weights, found only pickle checkpoint files "
            + fileNames(files)
            + ". Pickle files (.bin, .pt, .pth, .pkl, .ckpt) can execute arbitrary code when they"
            + " are loaded, so Compactor never deserializes them. Convert the model in a trusted,"
            + " sandboxed Python environment, e.g. `AutoModelForCausalLM.from_pretrained(path)"
            + ".save_pretrained(out, safe_serialization=True)` or `safetensors.torch.save_file("
            + "torch.load(f, weights_only=True), \"model.safetensors\")`, and submit the"
            + " safetensors directory.");
  }

  /**
   * Returns {@code file} unchanged after checking that it is a regular file which (following any
   * links) lies inside {@code dir}: a checkpoint must not make us read files elsewhere on the
   * machine. The name as given is kept so messages and copies use the names the user knows.
   */
  static Path insideDir(Path dir, Path file) throws IOException {
    Path realDir = dir.toRealPath();
    if (!Files.exists(file)) {
      throw new CheckpointFormatException(
          file
              + ": expected an existing file inside "
              + dir
              + ", found nothing (or a dangling link)");
    }
    Path real = file.toRealPath();
    if (!real.startsWith(realDir)) {
      throw new CheckpointFormatException(
          file + ": expected a file inside " + realDir + ", found a link to " + real);
    }
    if (!Files.isRegularFile(real)) {
      throw new CheckpointFormatException(
          file + ": expected a regular file, found a directory or" + " special file");
    }
    return file;
  }

  static String fileNames(List<Path> files) {
    List<String> names = new ArrayList<>();
    for (Path p : files) {
      names.add(p.getFileName().toString());
    }
    return names.toString();
  }
}
