package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ArtifactManifestTest {
  private static final String H1 = "a".repeat(64);
  private static final String H2 = "b".repeat(64);
  private static final ArtifactManifest.Provenance PROV =
      new ArtifactManifest.Provenance("prune", "name: r", H2, Map.of("sparsity", 0.5, "a", 1.0));

  @Test
  void canonicalBytesDoNotDependOnListingOrder() {
    ArtifactManifest m1 =
        new ArtifactManifest(
            "hf-safetensors",
            List.of(
                new ArtifactManifest.FileEntry("model.safetensors", 10, H1),
                new ArtifactManifest.FileEntry("config.json", 3, H2)),
            PROV);
    ArtifactManifest m2 =
        new ArtifactManifest(
            "hf-safetensors",
            List.of(
                new ArtifactManifest.FileEntry("config.json", 3, H2),
                new ArtifactManifest.FileEntry("model.safetensors", 10, H1)),
            PROV);
    assertArrayEquals(m1.toJson(), m2.toJson());
    assertEquals(13, m1.totalBytes());
    assertEquals("config.json", m1.files().get(0).path());
  }

  @Test
  void provenanceChangesTheAddress() {
    List<ArtifactManifest.FileEntry> files = List.of(new ArtifactManifest.FileEntry("w", 1, H1));
    ArtifactManifest a = new ArtifactManifest("gguf", files, PROV);
    ArtifactManifest b =
        new ArtifactManifest(
            "gguf", files, new ArtifactManifest.Provenance("prune", "name: r", null, Map.of()));
    assertNotEquals(Sha256.of(a.toJson()), Sha256.of(b.toJson()));
  }

  @Test
  void parseRoundTrips() {
    ArtifactManifest m =
        new ArtifactManifest(
            "hf-safetensors", List.of(new ArtifactManifest.FileEntry("sub/x.bin", 7, H1)), PROV);
    ArtifactManifest back = ArtifactManifest.parse(m.toJson());
    assertEquals(m, back);
    assertArrayEquals(m.toJson(), back.toJson());
  }

  @Test
  void rejectsUnsafePathsDuplicatesAndBadHashes() {
    for (String bad : List.of("../x", "/etc/passwd", "a//b", "a/./b", "manifest.json", "a\\b")) {
      assertThrows(
          IllegalArgumentException.class,
          () ->
              new ArtifactManifest("f", List.of(new ArtifactManifest.FileEntry(bad, 1, H1)), PROV),
          bad);
    }
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new ArtifactManifest(
                "f",
                List.of(
                    new ArtifactManifest.FileEntry("x", 1, H1),
                    new ArtifactManifest.FileEntry("x", 1, H1)),
                PROV));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new ArtifactManifest(
                "f", List.of(new ArtifactManifest.FileEntry("x", 1, "ABC")), PROV));
  }

  @Test
  void parseSaysWhichFieldIsMissingOrWrong() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                ArtifactManifest.parse(
                    "{\"formatVersion\":1,\"format\":\"x\"}".getBytes(StandardCharsets.UTF_8)));
    assertTrue(e.getMessage().contains("'files'"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ArtifactManifest.parse("{\"formatVersion\":9}".getBytes(StandardCharsets.UTF_8)));
    assertTrue(e.getMessage().contains("expected formatVersion 1, found 9"), e.getMessage());
  }
}
