package dev.compactor.runtime;

import java.nio.file.Path;

/**
 * A second process for {@link ScratchDirsTest}: takes a scratch dir under {@code args[0]}, prints
 * its path, and holds it until killed (as a worker killed mid-job would).
 */
public final class ScratchDirHolder {
  private ScratchDirHolder() {}

  public static void main(String[] args) throws Exception {
    ScratchDirs.Lease lease = new ScratchDirs(Path.of(args[0])).create("quantize", "job-7-2");
    java.nio.file.Files.writeString(lease.dir().resolve("input.bin"), "x".repeat(10_000));
    System.out.println(lease.dir());
    System.out.flush();
    Thread.sleep(120_000);
  }
}
