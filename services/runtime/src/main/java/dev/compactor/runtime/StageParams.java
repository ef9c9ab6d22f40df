package dev.compactor.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * A stage's settings from the recipe ({@code StageRequested.paramsJson}), with typed getters whose
 * errors name the parameter, what was expected and what was found — e.g. {@code param 'bits':
 * expected an integer, found "four"}.
 */
public final class StageParams {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final JsonNode root;

  private StageParams(JsonNode root) {
    this.root = root;
  }

  /**
   * Parses a JSON object; empty or blank text means no parameters.
   *
   * @throws IllegalArgumentException when the text is not a JSON object
   */
  public static StageParams parse(String json) {
    if (json == null || json.isBlank()) {
      return new StageParams(JSON.createObjectNode());
    }
    JsonNode node;
    try {
      node = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "stage params: expected a JSON object, found unparsable text: " + e.getMessage());
    }
    if (node == null || !node.isObject()) {
      throw new IllegalArgumentException(
          "stage params: expected a JSON object, found "
              + (node == null ? "nothing" : node.getNodeType()));
    }
    return new StageParams(node);
  }

  /** The parameter names present. */
  public Set<String> names() {
    Set<String> names = new TreeSet<>();
    root.fieldNames().forEachRemaining(names::add);
    return names;
  }

  /** True when the parameter is present and not null. */
  public boolean has(String name) {
    JsonNode v = root.get(name);
    return v != null && !v.isNull();
  }

  /** A string parameter, or {@code def} when absent. */
  public String string(String name, String def) {
    JsonNode v = root.get(name);
    if (v == null || v.isNull()) {
      return def;
    }
    if (!v.isTextual()) {
      throw wrong(name, "a string", v);
    }
    return v.asText();
  }

  /** A required string parameter. */
  public String requireString(String name) {
    String v = string(name, null);
    if (v == null) {
      throw new IllegalArgumentException("param '" + name + "': expected a string, found none");
    }
    return v;
  }

  /** An integer parameter, or {@code def} when absent. */
  public int integer(String name, int def) {
    JsonNode v = root.get(name);
    if (v == null || v.isNull()) {
      return def;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw wrong(name, "an integer", v);
    }
    return v.intValue();
  }

  /** A number parameter, or {@code def} when absent. */
  public double number(String name, double def) {
    JsonNode v = root.get(name);
    if (v == null || v.isNull()) {
      return def;
    }
    if (!v.isNumber()) {
      throw wrong(name, "a number", v);
    }
    return v.doubleValue();
  }

  /** A boolean parameter, or {@code def} when absent. */
  public boolean flag(String name, boolean def) {
    JsonNode v = root.get(name);
    if (v == null || v.isNull()) {
      return def;
    }
    if (!v.isBoolean()) {
      throw wrong(name, "true or false", v);
    }
    return v.booleanValue();
  }

  /** A list of strings (a single string counts as a one-element list), or empty when absent. */
  public List<String> strings(String name) {
    JsonNode v = root.get(name);
    List<String> out = new ArrayList<>();
    if (v == null || v.isNull()) {
      return out;
    }
    if (v.isTextual()) {
      out.add(v.asText());
      return out;
    }
    if (!v.isArray()) {
      throw wrong(name, "a list of strings", v);
    }
    for (Iterator<JsonNode> it = v.elements(); it.hasNext(); ) {
      JsonNode e = it.next();
      if (!e.isTextual()) {
        throw wrong(name, "a list of strings", v);
      }
      out.add(e.asText());
    }
    return out;
  }

  /** A nested object parameter, if present. */
  public Optional<StageParams> object(String name) {
    JsonNode v = root.get(name);
    if (v == null || v.isNull()) {
      return Optional.empty();
    }
    if (!v.isObject()) {
      throw wrong(name, "an object", v);
    }
    return Optional.of(new StageParams(v));
  }

  /** The raw JSON tree, for stages with structured settings. */
  public JsonNode json() {
    return root.deepCopy();
  }

  @Override
  public String toString() {
    return root.toString();
  }

  private static IllegalArgumentException wrong(String name, String expected, JsonNode found) {
    return new IllegalArgumentException(
        "param '" + name + "': expected " + expected + ", found " + found);
  }
}
