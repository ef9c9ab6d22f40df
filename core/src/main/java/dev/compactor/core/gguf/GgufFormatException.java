package dev.compactor.core.gguf;

import dev.compactor.core.io.CheckpointFormatException;

/** A GGUF file violates the format; the message names the field, what was expected and found. */
public class GgufFormatException extends CheckpointFormatException {

  public GgufFormatException(String message) {
    super(message);
  }
}
