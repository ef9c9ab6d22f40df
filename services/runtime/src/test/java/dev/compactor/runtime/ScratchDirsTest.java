package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScratchDirsTest {
  @TempDir Path root;

  @Test
  void aKilledWorkersDirIsDeletedAndALiveOnesIsKept() throws Exception {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process holder =
        new ProcessBuilder(
                java.toString(),
                "-cp",
                System.getProperty("java.class.path"),
                ScratchDirHolder.class.getName(),
                root.toString())
            .redirectErrorStream(true)
            .start();
    try {
      Path held;
      try (BufferedReader out =
          new BufferedReader(
              new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        do {
          line = out.readLine();
        } while (line != null && !line.startsWith(root.toString()));
        held = Path.of(line);
      }
      assertTrue(Files.isDirectory(held));
      ScratchDirs dirs = new ScratchDirs(root);
      ScratchDirs.Cleanup live = dirs.deleteStale();
      assertEquals(1, live.inUse(), live.toString());
      assertTrue(Files.isDirectory(held), "a live worker's dir is kept");

      holder.destroyForcibly();
      assertTrue(holder.waitFor(30, TimeUnit.SECONDS));
      assertTrue(Files.isDirectory(held), "a killed worker leaves its dir behind");
      ScratchDirs.Cleanup dead = dirs.deleteStale();
      assertEquals(1, dead.deleted(), dead.toString());
      assertEquals(10_000, dead.bytes());
      assertFalse(Files.exists(held));
      assertFalse(Files.exists(Path.of(held + ScratchDirs.LOCK_SUFFIX)));
    } finally {
      holder.destroyForcibly();
    }
  }

  @Test
  void onlyUnlockedDirsOfThisLayoutAreDeleted() throws Exception {
    ScratchDirs dirs = new ScratchDirs(root);
    try (ScratchDirs.Lease mine = dirs.create("prune", "job-1-0")) {
      // Left by a dead worker: lock file present, nobody holds it.
      Path stale = Files.createDirectories(root.resolve("prune/job-2-1-" + uuid()));
      Files.writeString(stale.resolve("w.bin"), "abc");
      Files.createFile(Path.of(stale + ScratchDirs.LOCK_SUFFIX));
      // Made before locks existed: no lock file, owner unknown.
      Path legacy = Files.createDirectories(root.resolve("prune/job-3-1-" + uuid()));
      // Not ours at all.
      Path other = Files.createDirectories(root.resolve("prune/something-else"));
      Path otherStage = Files.createDirectories(root.resolve("not-a-stage/job-4-1-" + uuid()));
      Files.createFile(Path.of(otherStage + ScratchDirs.LOCK_SUFFIX));

      ScratchDirs.Cleanup c = dirs.deleteStale();
      assertEquals(1, c.deleted(), c.toString());
      assertEquals(3, c.bytes());
      assertEquals(1, c.inUse(), "this JVM's own lease counts as in use");
      assertEquals(1, c.withoutLock());
      assertFalse(Files.exists(stale));
      assertTrue(Files.isDirectory(mine.dir()));
      assertTrue(Files.isDirectory(legacy) && Files.isDirectory(other));
      assertTrue(Files.isDirectory(otherStage));
      Files.writeString(mine.dir().resolve("x"), "y");
      mine.close();
      assertFalse(Files.exists(mine.dir()));
      assertFalse(Files.exists(Path.of(mine.dir() + ScratchDirs.LOCK_SUFFIX)));
    }
  }

  private static String uuid() {
    return java.util.UUID.randomUUID().toString();
  }
}
