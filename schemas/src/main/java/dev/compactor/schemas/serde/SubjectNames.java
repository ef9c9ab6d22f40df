package dev.compactor.schemas.serde;

/**
 * Confluent's default TopicNameStrategy: the schema of a topic's values lives under subject {@code
 * <topic>-value}, its keys under {@code <topic>-key}.
 */
public final class SubjectNames {
  private SubjectNames() {}

  /** The subject for the keys or values of {@code topic}. */
  public static String subject(String topic, boolean isKey) {
    return topic + (isKey ? "-key" : "-value");
  }
}
