package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class S3UriTest {
  @Test
  void parsesBucketAndKey() {
    S3Uri u = S3Uri.parse("s3://compactor-artifacts/artifacts/ab/model.safetensors");
    assertEquals("compactor-artifacts", u.bucket());
    assertEquals("artifacts/ab/model.safetensors", u.key());
    assertEquals("s3://compactor-artifacts/artifacts/ab/model.safetensors", u.toString());
    S3Uri prefix = S3Uri.parse("s3://data/models/tiny/");
    assertTrue(prefix.isPrefix());
    assertEquals("models/tiny/config.json", prefix.resolve("config.json").key());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "http://bucket/key",
        "s3:/bucket/key",
        "s3://B/key",
        "s3://ab/key",
        "s3://-bucket/key",
        "s3://bucket..x/key",
        "s3://192.168.1.1/key",
        "s3://bucket//key",
        "s3://bucket/a/../b",
        "s3://bucket/./a",
        "s3://bucket/a\\b",
        "s3://bucket/a?versionId=1",
        "s3://bucket/a\u0000b"
      })
  void rejectsMalformedUris(String uri) {
    S3Uri.InvalidS3UriException e =
        assertThrows(S3Uri.InvalidS3UriException.class, () -> S3Uri.parse(uri));
    assertTrue(e.getMessage().startsWith("expected an s3://bucket/key URI"), e.getMessage());
  }
}
