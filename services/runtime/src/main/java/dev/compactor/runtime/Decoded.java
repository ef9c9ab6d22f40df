package dev.compactor.runtime;

import java.util.Map;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.serialization.Deserializer;

/**
 * A record value that either decoded, or did not — in which case the original bytes and the error
 * are kept, so the record can be copied to the dead-letter topic and the partition keeps flowing (a
 * throwing deserializer would make {@code poll()} fail on the same offset forever).
 *
 * @param value the decoded value, or null when decoding failed
 * @param raw the bytes as read from Kafka
 * @param error why decoding failed, or null
 */
record Decoded<T>(T value, byte[] raw, RuntimeException error) {
  boolean ok() {
    return error == null;
  }

  /** Wraps a deserializer so that its failures become {@link Decoded} values. */
  static <T> Deserializer<Decoded<T>> capturing(Deserializer<T> inner) {
    return new Deserializer<>() {
      @Override
      public void configure(Map<String, ?> configs, boolean isKey) {
        inner.configure(configs, isKey);
      }

      @Override
      public Decoded<T> deserialize(String topic, byte[] data) {
        return deserialize(topic, null, data);
      }

      @Override
      public Decoded<T> deserialize(String topic, Headers headers, byte[] data) {
        try {
          T v =
              headers == null
                  ? inner.deserialize(topic, data)
                  : inner.deserialize(topic, headers, data);
          if (v == null) {
            return new Decoded<>(
                null,
                data,
                new IllegalArgumentException("expected a record, found a null value (tombstone)"));
          }
          return new Decoded<>(v, data, null);
        } catch (RuntimeException e) {
          return new Decoded<>(null, data, e);
        }
      }

      @Override
      public void close() {
        inner.close();
      }
    };
  }
}
