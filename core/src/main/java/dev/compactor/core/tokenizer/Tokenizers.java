package dev.compactor.core.tokenizer;

import dev.compactor.core.io.CheckpointFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the tokenizer that belongs to a Hugging Face style model directory. */
public final class Tokenizers {

  private Tokenizers() {}

  /**
   * The tokenizer of the model in {@code dir}: its tokenizer.json, run by the Hugging Face
   * tokenizers library. A directory without tokenizer.json is refused with a message naming the
   * file that was expected (tokenizer.model / SentencePiece-only directories are not supported).
   */
  public static TextTokenizer forModel(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointFormatException(
          "expected a model directory at " + dir + " but found none");
    }
    if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      return HfTokenizer.load(dir);
    }
    if (Files.isRegularFile(dir.resolve("tokenizer.model"))) {
      throw new UnsupportedOperationException(
          "not supported yet: SentencePiece tokenizer.model without tokenizer.json in " + dir);
    }
    throw new CheckpointFormatException(
        "expected " + dir.resolve("tokenizer.json") + " (a Hugging Face tokenizer) but found none");
  }
}
