package dev.compactor.core.io;

import java.io.IOException;

/**
 * A checkpoint file or directory violates its format or is refused (e.g. a pickle file). The
 * message says what was expected and what was found, so a user can act on it without a debugger.
 */
public class CheckpointFormatException extends IOException {

  public CheckpointFormatException(String message) {
    super(message);
  }

  public CheckpointFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
