package dev.compactor.runtime;

import io.minio.BucketExistsArgs;
import io.minio.GetObjectArgs;
import io.minio.GetObjectResponse;
import io.minio.ListObjectsArgs;
import io.minio.MakeBucketArgs;
import io.minio.MinioClient;
import io.minio.PutObjectArgs;
import io.minio.RemoveObjectArgs;
import io.minio.Result;
import io.minio.StatObjectArgs;
import io.minio.UploadObjectArgs;
import io.minio.errors.ErrorResponseException;
import io.minio.errors.InvalidResponseException;
import io.minio.errors.ServerException;
import io.minio.http.HttpUtils;
import io.minio.messages.Item;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import okhttp3.OkHttpClient;

/**
 * Stores and fetches files in S3 (or MinIO, or the embedded S3Proxy) through the MinIO SDK.
 *
 * <p>Every call is retried with exponential backoff on transient faults — I/O errors, HTTP 5xx, 408
 * and 429 — and fails at once on other client errors (403, 404, ...), which retrying cannot fix.
 * Files are streamed in both directions; nothing is held whole in the heap except the small objects
 * read with {@link #getBytes}. Failures surface as {@link BlobStoreException}; a missing object as
 * {@link BlobNotFoundException}.
 *
 * <p>A store made by {@link #create} owns its HTTP client: {@link #close()} stops its dispatcher
 * threads (non-daemon, kept alive 60 s after the last call, so an unclosed store holds the JVM open
 * for a minute) and drops its pooled connections.
 */
public final class BlobStore implements AutoCloseable {
  private static final Set<String> MISSING = Set.of("NoSuchKey", "NoSuchObject", "NoSuchBucket");
  private static final long PART_SIZE = 16L * 1024 * 1024;

  /** MinIO's own defaults for the client it would otherwise build itself. */
  private static final long HTTP_TIMEOUT_MS = TimeUnit.MINUTES.toMillis(5);

  private final MinioClient client;
  private final OkHttpClient ownedHttp;
  private final Retrier retrier;

  /** A store over an existing client, which stays the caller's to shut down. */
  public BlobStore(MinioClient client, Retrier retrier) {
    this(client, null, retrier);
  }

  private BlobStore(MinioClient client, OkHttpClient ownedHttp, Retrier retrier) {
    this.client = client;
    this.ownedHttp = ownedHttp;
    this.retrier = retrier;
  }

  /** A store for the endpoint, keys and retry settings in {@code config}. */
  public static BlobStore create(StageConfig config) {
    OkHttpClient http =
        HttpUtils.newDefaultHttpClient(HTTP_TIMEOUT_MS, HTTP_TIMEOUT_MS, HTTP_TIMEOUT_MS);
    MinioClient client =
        MinioClient.builder()
            .endpoint(config.get(StageConfig.S3_ENDPOINT))
            .credentials(
                config.get(StageConfig.S3_ACCESS_KEY), config.get(StageConfig.S3_SECRET_KEY))
            .region(config.get(StageConfig.S3_REGION))
            .httpClient(http)
            .build();
    return new BlobStore(client, http, Retrier.from(config));
  }

  /**
   * Releases the HTTP client this store owns (see {@link #create}); calls in flight are cancelled.
   * Idempotent; a store over a caller's client leaves that client alone.
   */
  @Override
  public void close() {
    if (ownedHttp != null) {
      ownedHttp.dispatcher().cancelAll();
      ownedHttp.dispatcher().executorService().shutdown();
      ownedHttp.connectionPool().evictAll();
    }
  }

  /** Uploads a local file, streaming it (multipart above 16 MiB). */
  public void putFile(S3Uri uri, Path file) {
    requireObject(uri);
    run(
        "put " + uri,
        () ->
            client.uploadObject(
                UploadObjectArgs.builder()
                    .bucket(uri.bucket())
                    .object(uri.key())
                    .filename(file.toString(), PART_SIZE)
                    .build()));
  }

  /** Uploads a small in-memory object (manifests, markers). */
  public void putBytes(S3Uri uri, byte[] data, String contentType) {
    requireObject(uri);
    run(
        "put " + uri,
        () ->
            client.putObject(
                PutObjectArgs.builder().bucket(uri.bucket()).object(uri.key()).stream(
                        new ByteArrayInputStream(data), data.length, -1)
                    .contentType(contentType)
                    .build()));
  }

  /** Downloads an object to {@code target} (replaced atomically once complete). */
  public void getFile(S3Uri uri, Path target) {
    read(
        uri,
        in -> {
          Path tmp = target.resolveSibling(target.getFileName() + ".part");
          Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
          Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
          return null;
        });
  }

  /**
   * Reads a small object whole.
   *
   * @throws BlobStoreException if it is larger than {@code maxBytes}
   */
  public byte[] getBytes(S3Uri uri, int maxBytes) {
    return read(
        uri,
        in -> {
          byte[] data = in.readNBytes(maxBytes + 1);
          if (data.length > maxBytes) {
            throw new BlobStoreException(
                uri + ": expected at most " + maxBytes + " bytes, found more", null);
          }
          return data;
        });
  }

  /** Handles an object's content; may be called again from the start if a transient fault hits. */
  @FunctionalInterface
  public interface StreamHandler<T> {
    T handle(InputStream in) throws IOException;
  }

  /**
   * Streams an object through {@code handler}. A transient fault while reading restarts the whole
   * read, so the handler must be repeatable (e.g. overwrite, not append).
   */
  public <T> T read(S3Uri uri, StreamHandler<T> handler) {
    requireObject(uri);
    return call(
        "get " + uri,
        () -> {
          try (GetObjectResponse in =
              client.getObject(
                  GetObjectArgs.builder().bucket(uri.bucket()).object(uri.key()).build())) {
            return handler.handle(in);
          }
        });
  }

  /** True when the object exists. */
  public boolean exists(S3Uri uri) {
    requireObject(uri);
    try {
      call(
          "stat " + uri,
          () ->
              client.statObject(
                  StatObjectArgs.builder().bucket(uri.bucket()).object(uri.key()).build()));
      return true;
    } catch (BlobNotFoundException e) {
      return false;
    }
  }

  /** One listed object. */
  public record BlobInfo(S3Uri uri, long size) {}

  /** Every object under a prefix (recursively), in key order. */
  public List<BlobInfo> list(S3Uri prefix) {
    return call(
        "list " + prefix,
        () -> {
          List<BlobInfo> out = new ArrayList<>();
          for (Result<Item> r :
              client.listObjects(
                  ListObjectsArgs.builder()
                      .bucket(prefix.bucket())
                      .prefix(prefix.key())
                      .recursive(true)
                      .build())) {
            Item item = r.get();
            if (!item.isDir()) {
              out.add(new BlobInfo(new S3Uri(prefix.bucket(), item.objectName()), item.size()));
            }
          }
          return out;
        });
  }

  /** Deletes an object; deleting a missing object is not an error. */
  public void delete(S3Uri uri) {
    requireObject(uri);
    run(
        "delete " + uri,
        () -> {
          client.removeObject(
              RemoveObjectArgs.builder().bucket(uri.bucket()).object(uri.key()).build());
          return null;
        });
  }

  /** Creates the bucket if it does not exist. */
  public void ensureBucket(String bucket) {
    S3Uri.bucketProblem(bucket)
        .ifPresent(
            p -> {
              throw new IllegalArgumentException("bucket '" + bucket + "': expected " + p);
            });
    run(
        "create bucket " + bucket,
        () -> {
          if (!client.bucketExists(BucketExistsArgs.builder().bucket(bucket).build())) {
            client.makeBucket(MakeBucketArgs.builder().bucket(bucket).build());
          }
          return null;
        });
  }

  /** True for faults that a later retry may not meet: I/O errors, 5xx, 408 and 429. */
  static boolean isTransient(Throwable e) {
    if (e instanceof ErrorResponseException ere) {
      int code = ere.response() == null ? 0 : ere.response().code();
      return code >= 500 || code == 408 || code == 429;
    }
    if (e instanceof ServerException || e instanceof InvalidResponseException) {
      return true;
    }
    if (e instanceof UncheckedIOException) {
      return true;
    }
    return e instanceof IOException;
  }

  private void run(String what, Retrier.Operation<?> op) {
    call(what, op);
  }

  private <T> T call(String what, Retrier.Operation<T> op) {
    try {
      return retrier.call(what, BlobStore::isTransient, op);
    } catch (BlobStoreException e) {
      throw e;
    } catch (ErrorResponseException e) {
      if (MISSING.contains(e.errorResponse().code())) {
        throw new BlobNotFoundException(what + ": " + e.errorResponse().code(), e);
      }
      throw new BlobStoreException(what + " failed: " + describe(e), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BlobStoreException(what + " interrupted", e);
    } catch (Exception e) {
      String tries = isTransient(e) ? " after " + retrier.attempts() + " attempts" : "";
      throw new BlobStoreException(what + " failed" + tries + ": " + describe(e), e);
    }
  }

  private static String describe(Exception e) {
    if (e instanceof ErrorResponseException ere) {
      return "HTTP "
          + (ere.response() == null ? "?" : ere.response().code())
          + " "
          + ere.errorResponse().code()
          + " "
          + ere.errorResponse().message();
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  private static void requireObject(S3Uri uri) {
    if (uri.isPrefix()) {
      throw new IllegalArgumentException("expected an object key, found prefix " + uri);
    }
  }

  /** An S3 operation failed (after retries, if the fault was transient). */
  public static class BlobStoreException extends RuntimeException {
    public BlobStoreException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** The object (or its bucket) does not exist. */
  public static final class BlobNotFoundException extends BlobStoreException {
    public BlobNotFoundException(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
