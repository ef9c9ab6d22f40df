package dev.compactor.runtime;

import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A strictly parsed {@code s3://bucket/key} address. The bucket must follow S3's naming rules; the
 * key must be relative, free of {@code .}/{@code ..} segments, empty segments, backslashes and
 * control characters, so a key can never escape its prefix when mapped onto a local directory. A
 * key ending in {@code /} denotes a prefix (a "directory").
 *
 * @param bucket the bucket name
 * @param key the object key or prefix, possibly empty (the whole bucket)
 */
public record S3Uri(String bucket, String key) {
  private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
  private static final Pattern IPV4 = Pattern.compile("\\d+\\.\\d+\\.\\d+\\.\\d+");

  /** Validates both parts. */
  public S3Uri {
    bucketProblem(bucket).ifPresent(p -> fail("s3://" + bucket + "/" + key, "bucket name: " + p));
    keyProblem(key).ifPresent(p -> fail("s3://" + bucket + "/" + key, "key: " + p));
  }

  /**
   * Parses {@code s3://bucket/key}.
   *
   * @throws InvalidS3UriException saying what was expected and what was found
   */
  public static S3Uri parse(String uri) {
    if (uri == null) {
      throw new InvalidS3UriException("an s3://bucket/key URI", "null");
    }
    if (!uri.startsWith("s3://")) {
      fail(uri, "scheme s3://");
    }
    String rest = uri.substring("s3://".length());
    int slash = rest.indexOf('/');
    String bucket = slash < 0 ? rest : rest.substring(0, slash);
    String key = slash < 0 ? "" : rest.substring(slash + 1);
    if (key.indexOf('?') >= 0 || key.indexOf('#') >= 0) {
      fail(uri, "no query or fragment");
    }
    return new S3Uri(bucket, key);
  }

  /** Returns what is wrong with a bucket name, or empty if it is valid. */
  public static Optional<String> bucketProblem(String bucket) {
    if (bucket == null || !BUCKET.matcher(bucket).matches()) {
      return Optional.of(
          "3-63 lower-case letters, digits, '.', '-', starting and ending alphanumeric");
    }
    if (bucket.contains("..") || IPV4.matcher(bucket).matches()) {
      return Optional.of("no '..' and not an IP address");
    }
    return Optional.empty();
  }

  private static Optional<String> keyProblem(String key) {
    if (key == null) {
      return Optional.of("a key (possibly empty)");
    }
    if (key.startsWith("/")) {
      return Optional.of("a relative key (no leading '/')");
    }
    if (key.length() > 1024) {
      return Optional.of("at most 1024 characters");
    }
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c < 0x20 || c == 0x7f || c == '\\') {
        return Optional.of("no control characters or backslashes");
      }
    }
    String body = key.endsWith("/") ? key.substring(0, key.length() - 1) : key;
    if (!body.isEmpty()) {
      for (String segment : body.split("/", -1)) {
        if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
          return Optional.of("no empty, '.' or '..' path segments");
        }
      }
    }
    return Optional.empty();
  }

  /** True when the key denotes a prefix (empty or ending in '/'). */
  public boolean isPrefix() {
    return key.isEmpty() || key.endsWith("/");
  }

  /** This prefix joined with a relative path, e.g. {@code artifacts/ab12/} + {@code a.json}. */
  public S3Uri resolve(String relative) {
    if (!isPrefix()) {
      throw new IllegalStateException(
          this + " is an object, not a prefix; cannot resolve " + relative);
    }
    return new S3Uri(bucket, key + relative);
  }

  @Override
  public String toString() {
    return "s3://" + bucket + "/" + key;
  }

  private static void fail(String found, String expected) {
    throw new InvalidS3UriException("an s3://bucket/key URI with " + expected, found);
  }

  /** A malformed S3 address; the message says what was expected and what was found. */
  public static final class InvalidS3UriException extends IllegalArgumentException {
    InvalidS3UriException(String expected, String found) {
      super("expected " + expected + ", found '" + found + "'");
    }
  }
}
