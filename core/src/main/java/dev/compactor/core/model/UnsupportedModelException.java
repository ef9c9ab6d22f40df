package dev.compactor.core.model;

/**
 * The checkpoint describes a model this code cannot run faithfully (an unknown {@code model_type},
 * an activation other than the one the family uses, rope scaling, ...). The message names the
 * unsupported thing, e.g. {@code "not supported: bert"}, so a user knows what to change.
 */
public class UnsupportedModelException extends IllegalArgumentException {

  public UnsupportedModelException(String message) {
    super(message);
  }
}
