package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;

/** Shared, thread-safe mappers and small readers for already-validated recipe nodes. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();
  static final YAMLMapper YAML = new YAMLMapper();

  private Json() {}

  static ObjectNode object() {
    return MAPPER.createObjectNode();
  }

  static String text(JsonNode params, String key, String fallback) {
    JsonNode n = params == null ? null : params.get(key);
    return n == null || n.isNull() ? fallback : n.asText();
  }

  static int integer(JsonNode params, String key, int fallback) {
    JsonNode n = params == null ? null : params.get(key);
    return n == null || n.isNull() ? fallback : n.asInt();
  }

  static double number(JsonNode params, String key, double fallback) {
    JsonNode n = params == null ? null : params.get(key);
    return n == null || n.isNull() ? fallback : n.asDouble();
  }

  static boolean bool(JsonNode params, String key, boolean fallback) {
    JsonNode n = params == null ? null : params.get(key);
    return n == null || n.isNull() ? fallback : n.asBoolean();
  }

  static Double optionalNumber(JsonNode params, String key) {
    JsonNode n = params == null ? null : params.get(key);
    return n == null || n.isNull() ? null : n.asDouble();
  }
}
