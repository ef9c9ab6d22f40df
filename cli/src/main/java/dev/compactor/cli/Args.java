package dev.compactor.cli;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Strict parser for {@code --name value} options and {@code --flag} switches: an option the command
 * did not declare, a repeated option, a missing value or a stray positional word is a {@link
 * UsageException}, so typos never pass silently.
 */
public final class Args {

  private final Map<String, String> values;
  private final Set<String> flags;

  private Args(Map<String, String> values, Set<String> flags) {
    this.values = values;
    this.flags = flags;
  }

  /**
   * Parses {@code argv} given the option names that take a value and the flags (both without the
   * leading dashes). {@code --name=value} is accepted too.
   */
  public static Args parse(String[] argv, Set<String> valueOptions, Set<String> flagNames)
      throws UsageException {
    Map<String, String> values = new HashMap<>();
    Set<String> flags = new HashSet<>();
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      if (!a.startsWith("--") || a.length() == 2) {
        throw new UsageException("unexpected argument '" + a + "'");
      }
      String name = a.substring(2);
      String inline = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (flagNames.contains(name)) {
        if (inline != null) {
          throw new UsageException("--" + name + " takes no value");
        }
        flags.add(name);
      } else if (valueOptions.contains(name)) {
        String value = inline;
        if (value == null) {
          if (i + 1 >= argv.length) {
            throw new UsageException("--" + name + " needs a value");
          }
          value = argv[++i];
        }
        if (values.put(name, value) != null) {
          throw new UsageException("--" + name + " given twice");
        }
      } else {
        throw new UsageException("unknown option --" + name);
      }
    }
    return new Args(values, flags);
  }

  public boolean has(String flag) {
    return flags.contains(flag);
  }

  public boolean present(String option) {
    return values.containsKey(option);
  }

  public String string(String option, String fallback) {
    return values.getOrDefault(option, fallback);
  }

  public String required(String option) throws UsageException {
    String v = values.get(option);
    if (v == null) {
      throw new UsageException("missing required option --" + option);
    }
    return v;
  }

  public Path requiredPath(String option) throws UsageException {
    return Path.of(required(option));
  }

  public int integer(String option, int fallback) throws UsageException {
    String v = values.get(option);
    if (v == null) {
      return fallback;
    }
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new UsageException("--" + option + " expects an integer, found '" + v + "'");
    }
  }

  public long longValue(String option, long fallback) throws UsageException {
    String v = values.get(option);
    if (v == null) {
      return fallback;
    }
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new UsageException("--" + option + " expects an integer, found '" + v + "'");
    }
  }

  public double number(String option, double fallback) throws UsageException {
    String v = values.get(option);
    if (v == null) {
      return fallback;
    }
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new UsageException("--" + option + " expects a number, found '" + v + "'");
    }
  }
}
