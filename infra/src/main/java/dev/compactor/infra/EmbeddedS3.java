package dev.compactor.infra;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.nio2blob.FilesystemNio2BlobStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real S3-compatible HTTP server (S3Proxy over a plain directory) running inside the JVM, so the
 * services' S3 client code runs unchanged against it in development, the demo and tests.
 *
 * <p>It listens on the loopback (on a free port unless told one), accepts AWS signature V2 and V4
 * with access key {@link #ACCESS_KEY} and a secret generated per data directory (kept in {@code
 * <dataDir>/s3-secret}, mode 0600, reused on restart; region {@link #REGION}, path-style URLs), and
 * stores each bucket as a directory under {@code <dataDir>/s3}. Not supported by S3Proxy: compose,
 * tags, policies, lifecycle, versioning, object lock.
 */
public final class EmbeddedS3 implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddedS3.class);

  /** Access key the server accepts. */
  public static final String ACCESS_KEY = "compactor";

  /** The file under the data directory holding the generated secret key. */
  public static final String SECRET_FILE = "s3-secret";

  /** Region clients should sign for. */
  public static final String REGION = "us-east-1";

  private final S3Proxy proxy;
  private final FilesystemNio2BlobStore blobStore;
  private final URI endpoint;
  private final Path root;
  private final String secretKey;
  private boolean closed;

  private EmbeddedS3(
      S3Proxy proxy, FilesystemNio2BlobStore blobStore, URI endpoint, Path root, String secret) {
    this.proxy = proxy;
    this.blobStore = blobStore;
    this.endpoint = endpoint;
    this.root = root;
    this.secretKey = secret;
  }

  /** Starts a server whose buckets live under {@code dataDir/s3} (kept across restarts). */
  public static EmbeddedS3 start(Path dataDir) throws IOException {
    return start(dataDir, 0);
  }

  /** Starts a server on {@code port} of the loopback (0 = any free port). */
  public static EmbeddedS3 start(Path dataDir, int port) throws IOException {
    Path root = dataDir.toAbsolutePath().resolve("s3");
    Files.createDirectories(root);
    String secret = DataDirSecret.readOrCreate(dataDir.toAbsolutePath().resolve(SECRET_FILE));
    long t0 = System.nanoTime();
    FilesystemNio2BlobStore blobStore = new FilesystemNio2BlobStore(root.toString());
    S3Proxy proxy =
        S3Proxy.builder()
            .blobStore(blobStore)
            .endpoint(URI.create("http://127.0.0.1:" + port))
            .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, secret)
            .jettyMaxThreads(32)
            .build();
    try {
      proxy.start();
      // start() returns before Jetty reports STARTED on slow machines.
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (!"STARTED".equals(proxy.getState())) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("S3Proxy state " + proxy.getState() + " after 30 s");
        }
        Thread.sleep(10);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopQuietly(proxy, blobStore);
      throw new IllegalStateException("interrupted while starting S3Proxy", e);
    } catch (Exception e) {
      stopQuietly(proxy, blobStore);
      throw new IllegalStateException(
          "S3Proxy did not start on 127.0.0.1:" + port + (port == 0 ? "" : " (port taken?)"), e);
    }
    URI endpoint = URI.create("http://127.0.0.1:" + proxy.getPort());
    log.info(
        "Embedded S3 ready at {} (data {}) in {} ms",
        endpoint,
        root,
        (System.nanoTime() - t0) / 1_000_000);
    return new EmbeddedS3(proxy, blobStore, endpoint, root, secret);
  }

  /** Base URL of the server, e.g. {@code http://127.0.0.1:41234}. */
  public URI endpoint() {
    return endpoint;
  }

  /** Access key clients sign with. */
  public String accessKey() {
    return ACCESS_KEY;
  }

  /** Secret key clients sign with. */
  public String secretKey() {
    return secretKey;
  }

  /** Directory holding one sub-directory per bucket. */
  public Path root() {
    return root;
  }

  /** Stops the HTTP server and releases the port. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    stopQuietly(proxy, blobStore);
    log.info("Embedded S3 at {} stopped", endpoint);
  }

  private static void stopQuietly(S3Proxy proxy, FilesystemNio2BlobStore blobStore) {
    try {
      proxy.stop();
    } catch (Exception e) {
      log.warn("S3Proxy stop reported an error: {}", e.toString());
    }
    blobStore.close();
  }
}
