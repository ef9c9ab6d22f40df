package dev.compactor.schemas;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.avro.Schema;

/**
 * The build's schema gate: every released snapshot {@code <Event>.v<N>.avsc} must still be readable
 * by the current schema of {@code <Event>} (BACKWARD, checked against every released version).
 */
final class ReleasedSchemaGate {

  static final Path RELEASED_DIR = Path.of("src/main/released");
  private static final Pattern SNAPSHOT = Pattern.compile("([A-Za-z0-9_]+)\\.v([0-9]+)\\.avsc");

  private ReleasedSchemaGate() {}

  /** Returns one line per problem; empty when every released version is readable. */
  static List<String> verify(Path releasedDir, Function<String, Schema> currentByName)
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
      BackwardCompatibility.Report report = BackwardCompatibility.check(current, released);
      for (String problem : report.problems()) {
        problems.add(m.group(1) + " vs released " + file.getFileName() + ": " + problem);
      }
    }
    return problems;
  }

  static List<Path> snapshots(Path releasedDir) throws IOException {
    try (Stream<Path> files = Files.list(releasedDir)) {
      return files.filter(p -> p.toString().endsWith(".avsc")).sorted().toList();
    }
  }

  /** The current schema of a generated event class, by simple name; null if there is none. */
  static Schema currentEventSchema(String simpleName) {
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
}
