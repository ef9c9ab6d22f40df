package dev.compactor.infra;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import io.minio.errors.ErrorResponseException;
import io.minio.messages.Item;
import java.io.ByteArrayInputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedS3IT {
  @TempDir static Path dir;
  static EmbeddedS3 s3;
  static MinioClient client;

  @BeforeAll
  static void start() throws Exception {
    s3 = EmbeddedS3.start(dir);
    client =
        MinioClient.builder()
            .endpoint(s3.endpoint().toString())
            .credentials(s3.accessKey(), s3.secretKey())
            .region(EmbeddedS3.REGION)
            .build();
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  @Test
  void theSecretIsGeneratedPerDataDirAndKeptAcrossRestarts(@TempDir Path other) throws Exception {
    assertTrue(!s3.secretKey().equals("compactor-secret-key"), "no hard-coded secret");
    assertEquals(
        "rw-------",
        java.nio.file.attribute.PosixFilePermissions.toString(
            java.nio.file.Files.getPosixFilePermissions(dir.resolve(EmbeddedS3.SECRET_FILE))));
    String otherSecret;
    try (EmbeddedS3 second = EmbeddedS3.start(other)) {
      otherSecret = second.secretKey();
      MinioClient wrong =
          MinioClient.builder()
              .endpoint(second.endpoint().toString())
              .credentials(s3.accessKey(), s3.secretKey())
              .region(EmbeddedS3.REGION)
              .build();
      assertThrows(
          ErrorResponseException.class,
          () -> wrong.bucketExists(BucketExistsArgs.builder().bucket("x-bucket").build()),
          "another data dir's secret is refused");
    }
    assertTrue(!otherSecret.equals(s3.secretKey()));
    try (EmbeddedS3 again = EmbeddedS3.start(other)) {
      assertEquals(otherSecret, again.secretKey(), "a restart reuses the secret");
    }
  }

  @Test
  void putGetListDeleteThroughTheMinioSdk() throws Exception {
    client.makeBucket(MakeBucketArgs.builder().bucket("it-bucket").build());
    assertTrue(client.bucketExists(BucketExistsArgs.builder().bucket("it-bucket").build()));

    // Larger than one 5 MiB part, so the SDK uploads it as a multipart upload.
    byte[] data = new byte[7 * 1024 * 1024 + 13];
    new Random(3).nextBytes(data);
    client.putObject(
        PutObjectArgs.builder().bucket("it-bucket").object("a/b/blob.bin").stream(
                new ByteArrayInputStream(data), data.length, 5L * 1024 * 1024)
            .build());
    assertEquals(
        data.length,
        client
            .statObject(StatObjectArgs.builder().bucket("it-bucket").object("a/b/blob.bin").build())
            .size());
    try (GetObjectResponse in =
        client.getObject(
            GetObjectArgs.builder().bucket("it-bucket").object("a/b/blob.bin").build())) {
      assertArrayEquals(data, in.readAllBytes());
    }

    List<String> names = new ArrayList<>();
    for (Result<Item> r :
        client.listObjects(
            ListObjectsArgs.builder().bucket("it-bucket").prefix("a/").recursive(true).build())) {
      names.add(r.get().objectName());
    }
    assertEquals(List.of("a/b/blob.bin"), names);

    client.removeObject(
        RemoveObjectArgs.builder().bucket("it-bucket").object("a/b/blob.bin").build());
    ErrorResponseException e =
        assertThrows(
            ErrorResponseException.class,
            () ->
                client.statObject(
                    StatObjectArgs.builder().bucket("it-bucket").object("a/b/blob.bin").build()));
    assertEquals("NoSuchKey", e.errorResponse().code());
  }

  @Test
  void wrongSecretIsRejected() {
    MinioClient intruder =
        MinioClient.builder()
            .endpoint(s3.endpoint().toString())
            .credentials(s3.accessKey(), "not-the-secret")
            .region(EmbeddedS3.REGION)
            .build();
    ErrorResponseException e =
        assertThrows(
            ErrorResponseException.class,
            () -> intruder.bucketExists(BucketExistsArgs.builder().bucket("it-bucket").build()));
    assertEquals(403, e.response().code());
  }
}
