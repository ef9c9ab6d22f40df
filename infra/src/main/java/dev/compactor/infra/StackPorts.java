package dev.compactor.infra;

import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * The ports a {@link LocalStack} chose on its first start in a data directory, kept in a properties
 * file there and reused on every later start: a restart that moved Kafka, the registry or S3 would
 * strand the external workers and clients configured with the old addresses.
 */
final class StackPorts {
  static final String KAFKA = "kafka.port";
  static final String KAFKA_CONTROLLER = "kafka.controller.port";
  static final String S3 = "s3.port";
  static final String REGISTRY = "schema-registry.port";

  private final Path file;
  private final Map<String, Integer> recorded;

  private StackPorts(Path file, Map<String, Integer> recorded) {
    this.file = file;
    this.recorded = recorded;
  }

  /** The ports recorded in {@code file}; none when it does not exist. */
  static StackPorts load(Path file) throws IOException {
    Map<String, Integer> ports = new TreeMap<>();
    if (Files.exists(file)) {
      Properties p = new Properties();
      try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
        p.load(r);
      }
      for (String name : p.stringPropertyNames()) {
        try {
          ports.put(name, Integer.parseInt(p.getProperty(name).trim()));
        } catch (NumberFormatException e) {
          throw new IOException(
              file + ": " + name + " must be a port number, found '" + p.getProperty(name) + "'");
        }
      }
    }
    return new StackPorts(file, ports);
  }

  /** The recorded port of {@code name}, or 0 (any free port) when none is recorded. */
  int get(String name) {
    return recorded.getOrDefault(name, 0);
  }

  boolean any() {
    return !recorded.isEmpty();
  }

  /** Records the ports actually bound. */
  void record(Map<String, Integer> ports) {
    Properties p = new Properties();
    new TreeMap<>(ports).forEach((k, v) -> p.setProperty(k, String.valueOf(v)));
    StringWriter text = new StringWriter();
    try {
      p.store(text, "ports of this local stack, reused on restart; delete to choose new ones");
      Files.writeString(file, text.toString(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("could not record the stack's ports in " + file, e);
    }
    recorded.putAll(ports);
  }

  /** {@code e}, with a hint when recorded ports were in use and could not be bound. */
  RuntimeException explain(Exception e) {
    if (any() && mentionsTakenPort(e)) {
      return new IllegalStateException(
          "could not start the local stack on the ports recorded in "
              + file
              + " "
              + recorded
              + ": "
              + e.getMessage()
              + ". Another process (an earlier `compactor up` on this data dir?) holds one; stop"
              + " it, or delete "
              + file
              + " to choose new ports (clients and external workers then need the new ones).",
          e);
    }
    return e instanceof RuntimeException r ? r : new UncheckedIOException((IOException) e);
  }

  private static boolean mentionsTakenPort(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = String.valueOf(t.getMessage());
      if (t instanceof java.net.BindException || m.contains("taken") || m.contains("in use")) {
        return true;
      }
    }
    return false;
  }
}
