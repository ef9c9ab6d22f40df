package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A tiny declarative schema for recipe YAML values. Each {@link Type} checks one value at a path
 * and reports what it expected and what it found, so every problem names its exact location.
 */
final class ParamSchema {

  private ParamSchema() {}

  /** A check of one YAML value. */
  interface Type {
    /** Adds a problem to {@code out} for each way {@code node} (never null) breaks this type. */
    void check(JsonNode node, String path, List<RecipeProblem> out);

    /** What this type expects, as written in an error message. */
    String describe();
  }

  /** Accepts any value: for entries whose content is checked by dedicated code. */
  static Type any(String description) {
    return simple(description, n -> true);
  }

  static Type bool() {
    return simple("true or false", JsonNode::isBoolean);
  }

  /**
   * A string that {@code parser} accepts; a parser that throws {@link IllegalArgumentException}
   * makes it a mismatch described by {@code description}.
   */
  static Type parsedText(String description, java.util.function.Consumer<String> parser) {
    return simple(
        description,
        n -> {
          if (!n.isTextual()) {
            return false;
          }
          try {
            parser.accept(n.asText());
            return true;
          } catch (IllegalArgumentException e) {
            return false;
          }
        });
  }

  static Type text() {
    return simple("a non-empty string", n -> n.isTextual() && !n.asText().isBlank());
  }

  static Type oneOf(String... values) {
    List<String> allowed = List.of(values);
    return simple(
        "one of " + String.join(", ", allowed), n -> n.isTextual() && allowed.contains(n.asText()));
  }

  static Type intOneOf(int... values) {
    Set<Integer> allowed = Arrays.stream(values).boxed().collect(Collectors.toSet());
    String desc =
        "one of "
            + Arrays.stream(values).mapToObj(Integer::toString).collect(Collectors.joining(", "));
    return simple(desc, n -> n.isIntegralNumber() && allowed.contains(n.asInt()));
  }

  static Type integerAtLeast(int min) {
    return simple(
        "an integer >= " + min,
        n -> n.isIntegralNumber() && n.canConvertToInt() && n.asInt() >= min);
  }

  /** A number in a range; {@code Double.POSITIVE_INFINITY} as {@code max} means unbounded. */
  static Type number(double min, boolean minInclusive, double max, boolean maxInclusive) {
    String lo = (minInclusive ? "[" : "(") + fmt(min);
    String hi = Double.isInfinite(max) ? "inf)" : fmt(max) + (maxInclusive ? "]" : ")");
    return simple(
        "a number in " + lo + ", " + hi,
        n -> {
          if (!n.isNumber()) {
            return false;
          }
          double v = n.asDouble();
          boolean aboveMin = minInclusive ? v >= min : v > min;
          boolean belowMax = maxInclusive ? v <= max : v < max;
          return aboveMin && belowMax;
        });
  }

  static Type listOf(Type element) {
    return new Type() {
      @Override
      public void check(JsonNode node, String path, List<RecipeProblem> out) {
        if (!node.isArray() || node.isEmpty()) {
          out.add(mismatch(path, describe(), node));
          return;
        }
        for (int i = 0; i < node.size(); i++) {
          element.check(node.get(i), path + "[" + i + "]", out);
        }
      }

      @Override
      public String describe() {
        return "a non-empty list of " + element.describe();
      }
    };
  }

  /** Accepts a value that matches either type, e.g. {@code perplexity: true} or a mapping. */
  static Type either(Type first, Type second) {
    return new Type() {
      @Override
      public void check(JsonNode node, String path, List<RecipeProblem> out) {
        List<RecipeProblem> firstProblems = new ArrayList<>();
        first.check(node, path, firstProblems);
        if (firstProblems.isEmpty()) {
          return;
        }
        List<RecipeProblem> secondProblems = new ArrayList<>();
        second.check(node, path, secondProblems);
        if (secondProblems.isEmpty()) {
          return;
        }
        // A value shaped like the second alternative gets that alternative's detailed problems.
        boolean looksLikeSecond = node.isObject() || node.isArray();
        out.addAll(looksLikeSecond ? secondProblems : List.of(mismatch(path, describe(), node)));
      }

      @Override
      public String describe() {
        return first.describe() + " or " + second.describe();
      }
    };
  }

  static ObjectType object(String owner) {
    return new ObjectType(owner);
  }

  /** A mapping with known keys; any other key is an error naming the accepted ones. */
  static final class ObjectType implements Type {
    private final String owner;
    private final Map<String, Type> fields = new LinkedHashMap<>();
    private final Set<String> required = new LinkedHashSet<>();

    private ObjectType(String owner) {
      this.owner = owner;
    }

    ObjectType required(String name, Type type) {
      fields.put(name, type);
      required.add(name);
      return this;
    }

    ObjectType optional(String name, Type type) {
      fields.put(name, type);
      return this;
    }

    @Override
    public void check(JsonNode node, String path, List<RecipeProblem> out) {
      if (node.isNull() && required.isEmpty()) {
        return; // `evaluate:` with nothing after it means "all defaults"
      }
      if (!node.isObject()) {
        out.add(mismatch(path, describe(), node));
        return;
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        Type type = fields.get(e.getKey());
        String child = path.isEmpty() ? e.getKey() : path + "." + e.getKey();
        if (type == null) {
          out.add(
              new RecipeProblem(
                  child,
                  "unknown parameter; "
                      + owner
                      + " accepts "
                      + String.join(", ", fields.keySet())));
        } else if (e.getValue().isNull()) {
          out.add(new RecipeProblem(child, "expected " + type.describe() + " but found nothing"));
        } else {
          type.check(e.getValue(), child, out);
        }
      }
      for (String name : required) {
        if (!node.has(name)) {
          String child = path.isEmpty() ? name : path + "." + name;
          out.add(
              new RecipeProblem(
                  child, "missing; " + owner + " needs " + name + " (" + describe(name) + ")"));
        }
      }
    }

    private String describe(String field) {
      return fields.get(field).describe();
    }

    @Override
    public String describe() {
      return "a mapping with keys " + String.join(", ", fields.keySet());
    }
  }

  static RecipeProblem mismatch(String path, String expected, JsonNode found) {
    return new RecipeProblem(path, "expected " + expected + " but found " + describeFound(found));
  }

  /** How a found value reads in an error message. */
  static String describeFound(JsonNode n) {
    if (n == null || n.isNull() || n.isMissingNode()) {
      return "nothing";
    }
    if (n.isTextual()) {
      return "\"" + n.asText() + "\"";
    }
    if (n.isArray()) {
      return "a list " + n;
    }
    if (n.isObject()) {
      return "a mapping " + n;
    }
    return n.toString();
  }

  private static Type simple(String description, java.util.function.Predicate<JsonNode> ok) {
    return new Type() {
      @Override
      public void check(JsonNode node, String path, List<RecipeProblem> out) {
        if (!ok.test(node)) {
          out.add(mismatch(path, description, node));
        }
      }

      @Override
      public String describe() {
        return description;
      }
    };
  }

  private static String fmt(double v) {
    return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
  }
}
