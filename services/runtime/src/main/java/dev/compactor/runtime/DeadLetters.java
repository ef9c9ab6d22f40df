package dev.compactor.runtime;

/**
 * Header names on records in {@code compactor.deadletter}: where the original record was and why it
 * could not be processed. The record's key and value are the original bytes, unchanged, and the
 * original headers are kept.
 */
public final class DeadLetters {
  /** The topic the record was read from. */
  public static final String ORIGINAL_TOPIC = "compactor.dlq.topic";

  /** Its partition, as decimal text. */
  public static final String ORIGINAL_PARTITION = "compactor.dlq.partition";

  /** Its offset, as decimal text. */
  public static final String ORIGINAL_OFFSET = "compactor.dlq.offset";

  /** The error, one human-readable line. */
  public static final String ERROR = "compactor.dlq.error";

  /** The error's class name. */
  public static final String ERROR_TYPE = "compactor.dlq.error.type";

  /** The worker (and stage) that gave up on it. */
  public static final String WORKER = "compactor.dlq.worker";

  private DeadLetters() {}
}
