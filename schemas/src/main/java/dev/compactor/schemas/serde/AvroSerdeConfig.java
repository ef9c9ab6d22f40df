package dev.compactor.schemas.serde;

import java.util.Map;

/**
 * Settings of {@link AvroSerializer} and {@link AvroDeserializer}. The Kafka-config keys are the
 * ones Confluent's serdes use, so the same client properties work with either implementation.
 *
 * @param autoRegister register the record's schema under the subject on first use ({@code true});
 *     when false the schema must already be registered (as in production, where schemas are
 *     registered by the build/deploy pipeline) and is only looked up
 */
public record AvroSerdeConfig(boolean autoRegister) {

  /** Key of the auto-register setting. */
  public static final String AUTO_REGISTER_SCHEMAS = "auto.register.schemas";

  /** Auto-registering defaults (what the local stack and tests use). */
  public static final AvroSerdeConfig DEFAULT = new AvroSerdeConfig(true);

  /** Reads the settings from Kafka-style configs, falling back to {@link #DEFAULT}. */
  public static AvroSerdeConfig fromConfig(Map<String, ?> configs) {
    Object auto = configs.get(AUTO_REGISTER_SCHEMAS);
    return auto == null
        ? DEFAULT
        : new AvroSerdeConfig(Boolean.parseBoolean(auto.toString().trim()));
  }
}
