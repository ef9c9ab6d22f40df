package dev.compactor.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 helpers: lower-case hex digests of byte arrays and of files (streamed). */
public final class Sha256 {
  private static final HexFormat HEX = HexFormat.of();

  private Sha256() {}

  /** A fresh SHA-256 digest. */
  public static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }

  /** Hex digest of {@code data}. */
  public static String of(byte[] data) {
    return HEX.formatHex(newDigest().digest(data));
  }

  /** Hex digest of a file, read in 1 MiB chunks. */
  public static String of(Path file) throws IOException {
    MessageDigest md = newDigest();
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(file)) {
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
    }
    return HEX.formatHex(md.digest());
  }

  /** Hex form of a finished digest. */
  public static String hex(byte[] digest) {
    return HEX.formatHex(digest);
  }

  /** True for 64 lower-case hex characters. */
  public static boolean isHex(String s) {
    return s != null && s.matches("[0-9a-f]{64}");
  }
}
