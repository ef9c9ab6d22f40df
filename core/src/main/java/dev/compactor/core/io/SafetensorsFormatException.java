package dev.compactor.core.io;

import java.nio.file.Path;

/**
 * A safetensors file (or a sharded set's index) breaks the format. Carries the file, the header
 * field at fault, what the format requires there and what the file holds instead, so a user can see
 * at a glance whether the file is truncated, corrupt or written by a buggy exporter.
 */
public class SafetensorsFormatException extends CheckpointFormatException {

  private final transient Path file;
  private final String field;
  private final String expected;
  private final String found;

  public SafetensorsFormatException(Path file, String field, String expected, String found) {
    this(file, field, expected, found, null);
  }

  public SafetensorsFormatException(
      Path file, String field, String expected, String found, Throwable cause) {
    super(file + ": " + field + ": expected " + expected + ", found " + found, cause);
    this.file = file;
    this.field = field;
    this.expected = expected;
    this.found = found;
  }

  /** The file that is at fault. */
  public Path file() {
    return file;
  }

  /** The header field (or region) at fault, e.g. {@code "model.embed.weight.data_offsets"}. */
  public String field() {
    return field;
  }

  /** What the format requires. */
  public String expected() {
    return expected;
  }

  /** What the file holds instead. */
  public String found() {
    return found;
  }
}
