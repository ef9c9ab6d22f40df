package dev.compactor.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The build-time schema gate: a schema change that breaks BACKWARD compatibility with a released
 * version fails this test, and so the build.
 */
class ReleasedSchemasBackwardCompatibleTest {

  /** Surefire runs in the module directory. */
  private static final Path RELEASED_DIR = Path.of("src/main/released");

  @Test
  void everyReleasedVersionIsReadableByTheCurrentSchema() throws IOException {
    List<String> problems =
        ReleasedSchemas.verify(RELEASED_DIR, ReleasedSchemas::currentEventSchema);
    assertTrue(
        problems.isEmpty(),
        () ->
            "schema changes break BACKWARD compatibility with released versions; add defaults"
                + " instead of breaking readers:\n  "
                + String.join("\n  ", problems));
  }

  @Test
  void everyEventOnATopicHasAReleasedSnapshot() throws IOException {
    Set<String> released =
        ReleasedSchemas.snapshots(RELEASED_DIR).stream()
            .map(p -> p.getFileName().toString().split("\\.")[0])
            .collect(Collectors.toCollection(TreeSet::new));
    Set<String> onTopics =
        Topics.all().stream()
            .map(Topic::valueSchema)
            .filter(s -> s != null)
            .map(Schema::getName)
            .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(
        onTopics,
        released,
        "every event on a topic needs a snapshot src/main/released/<Event>.v1.avsc"
            + " (copy of its getClassSchema().toString(true)) so later changes are checked");
  }

  @Test
  void gateRejectsANewFieldWithoutDefault(@TempDir Path dir) throws IOException {
    List<String> problems =
        gateWithChangedCurrent(dir, "StageRequested", "StageRequested.new-field-without-default");
    assertEquals(1, problems.size(), problems::toString);
    String problem = problems.get(0);
    assertTrue(problem.startsWith("StageRequested vs released StageRequested.v1.avsc"), problem);
    assertTrue(problem.contains("field 'priority'"), problem);
    assertTrue(problem.contains("without a default value"), problem);
  }

  @Test
  void gateRejectsARemovedEnumSymbol(@TempDir Path dir) throws IOException {
    List<String> problems =
        gateWithChangedCurrent(dir, "JobStatus", "JobStatus.removed-enum-symbol");
    assertEquals(1, problems.size(), problems::toString);
    assertTrue(problems.get(0).contains("enum dev.compactor.events.JobState"), problems::toString);
    assertTrue(problems.get(0).contains("[REJECTED]"), problems::toString);
  }

  @Test
  void gateRejectsANarrowedType(@TempDir Path dir) throws IOException {
    List<String> problems =
        gateWithChangedCurrent(dir, "StageCompleted", "StageCompleted.narrowed-type");
    assertEquals(1, problems.size(), problems::toString);
    assertTrue(problems.get(0).contains("type changed at /fields/5/type"), problems::toString);
    assertTrue(problems.get(0).contains("writer LONG, reader INT"), problems::toString);
  }

  @Test
  void gateAcceptsANewOptionalField(@TempDir Path dir) throws IOException {
    assertEquals(
        List.of(), gateWithChangedCurrent(dir, "JobSubmitted", "JobSubmitted.new-optional-field"));
  }

  @Test
  void gateRejectsDeletingAReleasedEvent(@TempDir Path dir) throws IOException {
    copyReleased(dir, "ModelReady");
    List<String> problems = ReleasedSchemas.verify(dir, name -> null);
    assertEquals(1, problems.size());
    assertTrue(problems.get(0).contains("no longer exists"), problems::toString);
  }

  @Test
  void requireCompatibleThrowsWithEveryProblem() {
    Schema released = ReleasedSchemas.currentEventSchema("StageRequested");
    Schema changed = changed("StageRequested.new-field-without-default");
    BackwardCompatibility.IncompatibleSchemaException e =
        assertThrows(
            BackwardCompatibility.IncompatibleSchemaException.class,
            () ->
                BackwardCompatibility.check(changed, released).requireCompatible("StageRequested"));
    assertEquals(1, e.problems().size());
    assertTrue(e.getMessage().startsWith("StageRequested is not compatible: "), e.getMessage());
  }

  @Test
  void levelsCheckTheRightDirections() {
    Schema v1 = ReleasedSchemas.currentEventSchema("JobSubmitted");
    Schema optionalAdded = changed("JobSubmitted.new-optional-field");
    Schema requiredAdded = withRequiredField(v1);
    // A required new field: new readers cannot read old data, old readers can read new data.
    assertFalse(
        BackwardCompatibility.check(CompatibilityLevel.BACKWARD, requiredAdded, List.of(v1))
            .compatible());
    assertTrue(
        BackwardCompatibility.check(CompatibilityLevel.FORWARD, requiredAdded, List.of(v1))
            .compatible());
    assertFalse(
        BackwardCompatibility.check(CompatibilityLevel.FULL, requiredAdded, List.of(v1))
            .compatible());
    assertTrue(
        BackwardCompatibility.check(CompatibilityLevel.NONE, requiredAdded, List.of(v1))
            .compatible());
    assertTrue(
        BackwardCompatibility.check(CompatibilityLevel.FULL, optionalAdded, List.of(v1))
            .compatible());
    // Transitive levels look past the latest version: v1 -> required(v2) -> optional-only(v3).
    assertTrue(
        BackwardCompatibility.check(
                CompatibilityLevel.BACKWARD, requiredAdded, List.of(v1, requiredAdded))
            .compatible());
    assertFalse(
        BackwardCompatibility.check(
                CompatibilityLevel.BACKWARD_TRANSITIVE, requiredAdded, List.of(v1, requiredAdded))
            .compatible());
    assertTrue(
        BackwardCompatibility.check(CompatibilityLevel.BACKWARD, v1, List.of()).compatible());
  }

  @Test
  void releaseSnapshotsOnlyChangedEvents(@TempDir Path dir) throws IOException {
    for (Path file : ReleasedSchemas.snapshots(RELEASED_DIR)) {
      Files.copy(file, dir.resolve(file.getFileName()));
    }
    assertEquals(
        List.of(),
        ReleasedSchemas.release(dir, ReleasedSchemas.currentEventSchemas()),
        "all released");

    Map<String, Schema> changed =
        new java.util.LinkedHashMap<>(ReleasedSchemas.currentEventSchemas());
    changed.put("JobSubmitted", changed("JobSubmitted.new-optional-field"));
    assertEquals(
        List.of(dir.resolve("JobSubmitted.v2.avsc")), ReleasedSchemas.release(dir, changed));
    assertEquals(List.of(), ReleasedSchemas.verify(dir, changed::get));
    assertEquals(List.of(), ReleasedSchemas.release(dir, changed), "v2 is now the newest");
  }

  private static Schema withRequiredField(Schema base) {
    String json = base.toString();
    String extra = "{\"name\":\"priority\",\"type\":\"int\"}";
    return new Schema.Parser().parse(json.substring(0, json.lastIndexOf(']')) + "," + extra + "]}");
  }

  private static List<String> gateWithChangedCurrent(Path dir, String event, String changedName)
      throws IOException {
    copyReleased(dir, event);
    Schema changed = changed(changedName);
    return ReleasedSchemas.verify(dir, Map.of(event, changed)::get);
  }

  private static void copyReleased(Path dir, String event) throws IOException {
    Path released = RELEASED_DIR.resolve(event + ".v1.avsc");
    Files.copy(released, dir.resolve(released.getFileName()));
  }

  static Schema changed(String name) {
    try (InputStream in =
        ReleasedSchemasBackwardCompatibleTest.class.getResourceAsStream(
            "/changed/" + name + ".avsc")) {
      return new Schema.Parser().parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
