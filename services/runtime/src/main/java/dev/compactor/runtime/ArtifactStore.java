package dev.compactor.runtime;

import dev.compactor.events.ArtifactRef;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Content-addressed model artifacts in S3: a local directory goes up as {@code artifacts/<sha256 of
 * manifest>/<files...>} plus a {@code manifest.json} listing every file's size and SHA-256 and the
 * artifact's provenance, and comes back down with every byte verified.
 *
 * <p>The manifest is uploaded last, so its presence marks a complete artifact; uploading content
 * that is already stored (same files, same provenance) is skipped. Files are streamed and hashed in
 * 1 MiB chunks — a multi-GiB checkpoint never sits in the heap.
 */
public final class ArtifactStore {
  private static final Logger log = LoggerFactory.getLogger(ArtifactStore.class);
  private static final String PREFIX = "artifacts/";
  private static final int MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

  private final BlobStore blobs;
  private final String bucket;

  /** Artifacts in {@code bucket} of {@code blobs}. */
  public ArtifactStore(BlobStore blobs, String bucket) {
    S3Uri.bucketProblem(bucket)
        .ifPresent(
            p -> {
              throw new IllegalArgumentException("bucket '" + bucket + "': expected " + p);
            });
    this.blobs = blobs;
    this.bucket = bucket;
  }

  /** The bucket artifacts are stored in. */
  public String bucket() {
    return bucket;
  }

  /**
   * Uploads every regular file under {@code dir} (recursively) as one artifact.
   *
   * @param format the artifact's layout, e.g. {@code hf-safetensors}
   * @param provenance stage, recipe, parent artifact and metrics to record in the manifest
   * @return a reference whose {@code sha256} is the manifest's hash
   * @throws IllegalArgumentException if {@code dir} holds a symbolic link, a file named {@code
   *     manifest.json}, or no files
   */
  public ArtifactRef upload(Path dir, String format, ArtifactManifest.Provenance provenance)
      throws IOException {
    List<Path> paths = listFiles(dir);
    List<ArtifactManifest.FileEntry> entries = new ArrayList<>();
    for (Path file : paths) {
      entries.add(
          new ArtifactManifest.FileEntry(relative(dir, file), Files.size(file), Sha256.of(file)));
    }
    ArtifactManifest manifest = new ArtifactManifest(format, entries, provenance);
    byte[] json = manifest.toJson();
    String sha = Sha256.of(json);
    S3Uri prefix = new S3Uri(bucket, PREFIX + sha + "/");
    S3Uri manifestUri = prefix.resolve(ArtifactManifest.FILE_NAME);
    if (blobs.exists(manifestUri)) {
      log.info("Artifact {} already stored; upload skipped", prefix);
    } else {
      for (ArtifactManifest.FileEntry e : manifest.files()) {
        blobs.putFile(prefix.resolve(e.path()), dir.resolve(e.path()));
      }
      blobs.putBytes(manifestUri, json, "application/json");
      log.info(
          "Artifact {} stored: {} files, {} bytes", prefix, entries.size(), manifest.totalBytes());
    }
    return ArtifactRef.newBuilder()
        .setUri(prefix.toString())
        .setSha256(sha)
        .setSizeBytes(manifest.totalBytes())
        .setFormat(format)
        .build();
  }

  /** Fetches and verifies an artifact's manifest without its files. */
  public ArtifactManifest manifest(ArtifactRef ref) {
    S3Uri prefix = prefixOf(ref);
    String expected = String.valueOf(ref.getSha256());
    byte[] json = blobs.getBytes(prefix.resolve(ArtifactManifest.FILE_NAME), MAX_MANIFEST_BYTES);
    String found = Sha256.of(json);
    if (!found.equals(expected)) {
      throw new ArtifactIntegrityException(
          prefix + ArtifactManifest.FILE_NAME, "sha256 " + expected, "sha256 " + found);
    }
    ArtifactManifest manifest = ArtifactManifest.parse(json);
    if (manifest.totalBytes() != ref.getSizeBytes()) {
      throw new ArtifactIntegrityException(
          prefix.toString(),
          "total size " + ref.getSizeBytes() + " bytes",
          manifest.totalBytes() + " bytes in its manifest");
    }
    return manifest;
  }

  /**
   * Downloads an artifact into {@code targetDir}, verifying the manifest's hash against the
   * reference and every file's size and SHA-256 against the manifest.
   *
   * @return the verified manifest
   * @throws ArtifactIntegrityException on any mismatch (the bad file is removed)
   */
  public ArtifactManifest download(ArtifactRef ref, Path targetDir) throws IOException {
    ArtifactManifest manifest = manifest(ref);
    S3Uri prefix = prefixOf(ref);
    Path root = targetDir.toAbsolutePath().normalize();
    Files.createDirectories(root);
    for (ArtifactManifest.FileEntry e : manifest.files()) {
      Path target = root.resolve(e.path()).normalize();
      if (!target.startsWith(root)) {
        throw new IllegalArgumentException("artifact path escapes target dir: " + e.path());
      }
      Files.createDirectories(target.getParent());
      Verified got = blobs.read(prefix.resolve(e.path()), in -> copyHashing(in, target));
      if (got.size != e.size() || !got.sha256.equals(e.sha256())) {
        Files.deleteIfExists(target);
        throw new ArtifactIntegrityException(
            prefix + e.path(),
            "sha256 " + e.sha256() + " (" + e.size() + " bytes)",
            "sha256 " + got.sha256 + " (" + got.size + " bytes)");
      }
    }
    log.info("Artifact {} downloaded and verified into {}", prefix, root);
    return manifest;
  }

  private record Verified(long size, String sha256) {}

  private static Verified copyHashing(InputStream raw, Path target) throws IOException {
    MessageDigest md = Sha256.newDigest();
    Path tmp = target.resolveSibling(target.getFileName() + ".part");
    long size;
    try (DigestInputStream in = new DigestInputStream(raw, md);
        OutputStream out = Files.newOutputStream(tmp)) {
      size = in.transferTo(out);
    }
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
    return new Verified(size, Sha256.hex(md.digest()));
  }

  private S3Uri prefixOf(ArtifactRef ref) {
    S3Uri prefix = S3Uri.parse(String.valueOf(ref.getUri()));
    String sha = String.valueOf(ref.getSha256());
    if (!prefix.isPrefix() || !Sha256.isHex(sha)) {
      throw new IllegalArgumentException(
          "artifact ref: expected an s3:// prefix ending in '/' and a 64-hex sha256, found "
              + ref.getUri()
              + " and "
              + sha);
    }
    return prefix;
  }

  private static List<Path> listFiles(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException("artifact source: expected a directory, found " + dir);
    }
    List<Path> files = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      walk.forEach(
          p -> {
            if (Files.isSymbolicLink(p)) {
              throw new IllegalArgumentException(
                  "artifact source: expected regular files, found symbolic link " + p);
            }
            if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
              files.add(p);
            }
          });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    if (files.isEmpty()) {
      throw new IllegalArgumentException(
          "artifact source: expected files in " + dir + ", found none");
    }
    return files;
  }

  private static String relative(Path dir, Path file) {
    String rel = dir.relativize(file).toString().replace(java.io.File.separatorChar, '/');
    ArtifactManifest.checkPath(rel);
    return rel;
  }

  /** A downloaded file or manifest does not match its recorded hash or size. */
  public static final class ArtifactIntegrityException extends RuntimeException {
    ArtifactIntegrityException(String what, String expected, String found) {
      super(what + ": expected " + expected + ", found " + found);
    }
  }
}
