package dev.compactor.schemas;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The released versions of the event schemas, kept as snapshots {@code <Event>.v<N>.avsc} in {@code
 * schemas/src/main/released/}, and the gate that keeps them readable: every snapshot must be
 * readable by the current schema of its event (BACKWARD, against every released version). The build
 * runs {@link #verify} in a test; {@link #main} snapshots the current schemas when releasing.
 *
 * <p>Releasing a changed event: change the {@code .avsc}, build (the gate tells you whether the
 * change is BACKWARD compatible), then run {@code main} to write {@code <Event>.v<N+1>.avsc} and
 * commit it with the change.
 */
public final class ReleasedSchemas {

  /** The snapshot directory relative to the repository root. */
  public static final Path DEFAULT_DIR = Path.of("schemas", "src", "main", "released");

  private static final Logger LOG = LoggerFactory.getLogger(ReleasedSchemas.class);
  private static final Pattern SNAPSHOT = Pattern.compile("([A-Za-z0-9_]+)\\.v([0-9]+)\\.avsc");

  private ReleasedSchemas() {}

  /**
   * Checks every snapshot in {@code releasedDir} against the current schema of its event.
   *
   * @param currentByName the current schema of an event by simple name, or null if it is gone
   * @return one line per problem; empty when every released version is readable
   */
  public static List<String> verify(Path releasedDir, Function<String, Schema> currentByName)
      throws IOException {
    List<String> problems = new ArrayList<>();
    for (Path file : snapshots(releasedDir)) {
      Matcher m = SNAPSHOT.matcher(file.getFileName().toString());
      if (!m.matches()) {
        problems.add(file + ": name must be <Event>.v<N>.avsc");
        continue;
      }
      Schema released = new Schema.Parser().parse(Files.readString(file));
      Schema current = currentByName.apply(m.group(1));
      if (current == null) {
        problems.add(
            file.getFileName()
                + ": event "
                + m.group(1)
                + " was released but no longer exists; released events cannot be deleted");
        continue;
      }
      for (String problem : BackwardCompatibility.check(current, released).problems()) {
        problems.add(m.group(1) + " vs released " + file.getFileName() + ": " + problem);
      }
    }
    return problems;
  }

  /**
   * Writes a new snapshot {@code <Event>.v<N+1>.avsc} for every event whose current schema differs
   * from its newest snapshot (or has none yet).
   *
   * @return the files written
   */
  public static List<Path> release(Path releasedDir, Map<String, Schema> currentByName)
      throws IOException {
    List<Path> written = new ArrayList<>();
    for (Map.Entry<String, Schema> event : currentByName.entrySet()) {
      int newest = 0;
      Schema newestSchema = null;
      for (Path file : snapshots(releasedDir)) {
        Matcher m = SNAPSHOT.matcher(file.getFileName().toString());
        if (m.matches() && m.group(1).equals(event.getKey())) {
          int version = Integer.parseInt(m.group(2));
          if (version > newest) {
            newest = version;
            newestSchema = new Schema.Parser().parse(Files.readString(file));
          }
        }
      }
      if (!event.getValue().equals(newestSchema)) {
        Path file = releasedDir.resolve(event.getKey() + ".v" + (newest + 1) + ".avsc");
        Files.writeString(file, event.getValue().toString(true) + "\n");
        written.add(file);
      }
    }
    return written;
  }

  /** The snapshot files of {@code releasedDir}, sorted by name. */
  public static List<Path> snapshots(Path releasedDir) throws IOException {
    try (Stream<Path> files = Files.list(releasedDir)) {
      return files.filter(p -> p.toString().endsWith(".avsc")).sorted().toList();
    }
  }

  /** The current schema of every event carried by a topic, by simple name. */
  public static Map<String, Schema> currentEventSchemas() {
    Map<String, Schema> schemas = new LinkedHashMap<>();
    for (Topic<String, ?> topic : Topics.all()) {
      Schema schema = topic.valueSchema();
      if (schema != null) {
        schemas.putIfAbsent(schema.getName(), schema);
      }
    }
    return schemas;
  }

  /**
   * The current schema of generated event class {@code dev.compactor.events.<simpleName>}, or null.
   */
  public static Schema currentEventSchema(String simpleName) {
    try {
      Class<?> type = Class.forName("dev.compactor.events." + simpleName);
      return (Schema) type.getMethod("getClassSchema").invoke(null);
    } catch (ClassNotFoundException e) {
      return null;
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(
          "dev.compactor.events." + simpleName + " is not generated", e);
    }
  }

  /**
   * Snapshots changed event schemas: {@code ReleasedSchemas [dir]} (default {@code
   * schemas/src/main/released}), run from the repository root.
   */
  public static void main(String[] args) throws IOException {
    Path dir = args.length > 0 ? Path.of(args[0]) : DEFAULT_DIR;
    List<Path> written = release(dir, currentEventSchemas());
    LOG.info("wrote {} new snapshot(s) to {}: {}", written.size(), dir, written);
    List<String> problems = verify(dir, ReleasedSchemas::currentEventSchema);
    if (!problems.isEmpty()) {
      throw new IllegalStateException("released schemas are not readable: " + problems);
    }
  }
}
