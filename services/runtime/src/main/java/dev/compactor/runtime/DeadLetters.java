package dev.compactor.runtime;

import dev.compactor.schemas.Topics;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;

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

  /** The dead-letter copy of {@code rec}: original key, value bytes and headers, plus ours. */
  static ProducerRecord<byte[], byte[]> copyOf(
      ConsumerRecord<byte[], ?> rec, byte[] rawValue, Throwable error, String worker) {
    RecordHeaders headers = new RecordHeaders(rec.headers().toArray());
    headers.add(ORIGINAL_TOPIC, utf8(rec.topic()));
    headers.add(ORIGINAL_PARTITION, utf8(String.valueOf(rec.partition())));
    headers.add(ORIGINAL_OFFSET, utf8(String.valueOf(rec.offset())));
    headers.add(ERROR, utf8(Failures.reason(error)));
    headers.add(ERROR_TYPE, utf8(Failures.rootCause(error).getClass().getName()));
    headers.add(WORKER, utf8(worker));
    return new ProducerRecord<>(Topics.DEADLETTER.name(), null, rec.key(), rawValue, headers);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
