package dev.compactor.infra;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Set;

/**
 * A secret kept in one file of a data directory: generated (256 random bits) the first time, read
 * back on every later start so clients configured once keep working. The file is created with mode
 * 0600 (owner only) and tightened to it if found looser; a hard-coded secret would let anyone on
 * the host in.
 */
public final class DataDirSecret {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Set<PosixFilePermission> OWNER_ONLY =
      PosixFilePermissions.fromString("rw-------");

  private DataDirSecret() {}

  /** The secret in {@code file}, creating it if missing. */
  public static String readOrCreate(Path file) throws IOException {
    Files.createDirectories(file.toAbsolutePath().getParent());
    if (!Files.exists(file)) {
      byte[] raw = new byte[32];
      RANDOM.nextBytes(raw);
      String secret = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
      try {
        if (posix(file.toAbsolutePath().getParent())) {
          Files.createFile(file, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } else {
          Files.createFile(file);
        }
        Files.writeString(file, secret + "\n", StandardCharsets.UTF_8, StandardOpenOption.WRITE);
        return secret;
      } catch (FileAlreadyExistsException raced) {
        // another process created it first: use theirs
      }
    }
    if (posix(file) && !Files.getPosixFilePermissions(file).equals(OWNER_ONLY)) {
      Files.setPosixFilePermissions(file, OWNER_ONLY);
    }
    String secret = Files.readString(file, StandardCharsets.UTF_8).trim();
    if (secret.isEmpty()) {
      throw new IOException("secret file " + file + " is empty; delete it to generate a new one");
    }
    return secret;
  }

  /** Writes {@code text} to {@code file}, which is (made) readable by its owner only. */
  public static void writeOwnerOnly(Path file, String text) throws IOException {
    Files.createDirectories(file.toAbsolutePath().getParent());
    if (!Files.exists(file) && posix(file.toAbsolutePath().getParent())) {
      Files.createFile(file, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
    } else if (Files.exists(file) && posix(file)) {
      Files.setPosixFilePermissions(file, OWNER_ONLY);
    }
    Files.writeString(file, text, StandardCharsets.UTF_8);
  }

  private static boolean posix(Path p) {
    return Files.getFileAttributeView(p, PosixFileAttributeView.class) != null;
  }
}
