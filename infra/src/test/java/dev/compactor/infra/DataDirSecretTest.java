package dev.compactor.infra;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Secrets are generated per data directory, owner-only, and reused on restart. */
class DataDirSecretTest {
  @TempDir Path tmp;

  @Test
  void generatedOncePerDirectoryOwnerOnlyAndReused() throws Exception {
    Path a = tmp.resolve("a/secret");
    String first = DataDirSecret.readOrCreate(a);
    assertTrue(first.length() >= 40, first);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(a)));
    assertEquals(first, DataDirSecret.readOrCreate(a), "a restart reuses the secret");
    assertNotEquals(first, DataDirSecret.readOrCreate(tmp.resolve("b/secret")));
  }

  @Test
  void aLooseFileIsTightened() throws Exception {
    Path f = tmp.resolve("secret");
    Files.writeString(f, "kept\n");
    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
    assertEquals("kept", DataDirSecret.readOrCreate(f));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f)));
  }
}
