package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.ArtifactRef;
import dev.compactor.infra.EmbeddedS3;
import io.minio.MinioClient;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link BlobStore} and {@link ArtifactStore} against a real S3 server. */
class ArtifactStoreIT {
  private static final String BUCKET = "it-artifacts";
  private static final ArtifactManifest.Provenance PROV =
      new ArtifactManifest.Provenance("quantize", "name: q4", "c".repeat(64), Map.of("bits", 4.0));

  @TempDir static Path dir;
  static EmbeddedS3 s3;
  static BlobStore blobs;
  static ArtifactStore artifacts;

  @BeforeAll
  static void start() throws Exception {
    s3 = EmbeddedS3.start(dir.resolve("s3"));
    blobs = new BlobStore(client(s3.secretKey()), new Retrier(3, 10, 50));
    blobs.ensureBucket(BUCKET);
    artifacts = new ArtifactStore(blobs, BUCKET);
  }

  @AfterAll
  static void stop() {
    s3.close();
  }

  @Test
  void uploadsContentAddressedAndDownloadsVerified() throws Exception {
    Path src = model("m1", 20 * 1024 * 1024 + 5);
    ArtifactRef ref = artifacts.upload(src, "hf-safetensors", PROV);
    assertTrue(ref.getUri().matches("s3://" + BUCKET + "/artifacts/[0-9a-f]{64}/"), ref.getUri());
    assertTrue(ref.getUri().contains(ref.getSha256()));
    assertEquals(20 * 1024 * 1024 + 5 + "{}".length() + "[m1]".length(), ref.getSizeBytes());

    Path out = dir.resolve("out1");
    ArtifactManifest manifest = artifacts.download(ref, out);
    assertEquals(PROV, manifest.provenance());
    for (String f : List.of("config.json", "tokenizer.json", "shards/model-00001.safetensors")) {
      assertEquals(Sha256.of(src.resolve(f)), Sha256.of(out.resolve(f)), f);
    }
    assertEquals(ref, artifacts.upload(src, "hf-safetensors", PROV), "same content, same ref");
  }

  @Test
  void aTamperedFileIsRejectedWithBothHashes() throws Exception {
    Path src = model("m2", 1000);
    ArtifactRef ref = artifacts.upload(src, "hf-safetensors", PROV);
    S3Uri victim = S3Uri.parse(ref.getUri()).resolve("config.json");
    byte[] tampered = "{\"tampered\": true}".getBytes(StandardCharsets.UTF_8);
    blobs.putBytes(victim, tampered, "application/json");
    Path out = dir.resolve("out2");

    ArtifactStore.ArtifactIntegrityException e =
        assertThrows(
            ArtifactStore.ArtifactIntegrityException.class, () -> artifacts.download(ref, out));
    assertTrue(e.getMessage().contains("config.json"), e.getMessage());
    assertTrue(e.getMessage().contains(Sha256.of(src.resolve("config.json"))), e.getMessage());
    assertTrue(e.getMessage().contains(Sha256.of(tampered)), e.getMessage());
    assertFalse(Files.exists(out.resolve("config.json")), "bad file must not be left behind");
  }

  @Test
  void aReferenceWithTheWrongHashIsRejected() throws Exception {
    ArtifactRef ref = artifacts.upload(model("m3", 10), "hf-safetensors", PROV);
    ArtifactRef forged = ArtifactRef.newBuilder(ref).setSha256("0".repeat(64)).build();
    assertThrows(
        ArtifactStore.ArtifactIntegrityException.class,
        () -> artifacts.download(forged, dir.resolve("out3")));
    ArtifactRef badUri = ArtifactRef.newBuilder(ref).setUri("s3://Bad_Bucket/x/").build();
    assertThrows(
        S3Uri.InvalidS3UriException.class, () -> artifacts.download(badUri, dir.resolve("out4")));
  }

  @Test
  void blobOperationsAndTypedMissingObject() throws Exception {
    S3Uri a = new S3Uri(BUCKET, "misc/a.txt");
    blobs.putBytes(a, "hello".getBytes(StandardCharsets.UTF_8), "text/plain");
    assertTrue(blobs.exists(a));
    assertEquals(List.of(new BlobStore.BlobInfo(a, 5)), blobs.list(new S3Uri(BUCKET, "misc/")));
    assertArrayEquals("hello".getBytes(StandardCharsets.UTF_8), blobs.getBytes(a, 100));
    assertThrows(BlobStore.BlobStoreException.class, () -> blobs.getBytes(a, 4));
    blobs.delete(a);
    assertFalse(blobs.exists(a));
    assertThrows(BlobStore.BlobNotFoundException.class, () -> blobs.getBytes(a, 100));
  }

  @Test
  void refusedCredentialsFailAtOnceUnreachableServersAfterRetries() throws Exception {
    BlobStore wrongKey = new BlobStore(client("wrong-secret"), new Retrier(3, 10, 50));
    BlobStore.BlobStoreException denied =
        assertThrows(
            BlobStore.BlobStoreException.class, () -> wrongKey.exists(new S3Uri(BUCKET, "misc/x")));
    assertTrue(denied.getMessage().contains("HTTP 403"), denied.getMessage());
    assertFalse(denied.getMessage().contains("attempts"), denied.getMessage());

    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    BlobStore nowhere =
        new BlobStore(
            MinioClient.builder()
                .endpoint("http://127.0.0.1:" + closedPort)
                .credentials(EmbeddedS3.ACCESS_KEY, "any-secret")
                .region(EmbeddedS3.REGION)
                .build(),
            new Retrier(3, 10, 50));
    BlobStore.BlobStoreException unreachable =
        assertThrows(
            BlobStore.BlobStoreException.class, () -> nowhere.exists(new S3Uri(BUCKET, "misc/x")));
    assertTrue(unreachable.getMessage().contains("after 3 attempts"), unreachable.getMessage());
  }

  @Test
  void aStageContextFetchesS3ObjectsPrefixesAndLocalPaths() throws Exception {
    S3Uri prefix = new S3Uri(BUCKET, "sources/tiny/");
    blobs.putBytes(
        prefix.resolve("config.json"),
        "{\"a\":1}".getBytes(StandardCharsets.UTF_8),
        "application/json");
    blobs.putBytes(prefix.resolve("nested/w.bin"), new byte[] {4, 2}, "application/octet-stream");
    StageContext ctx =
        StageContext.builder(
                dev.compactor.events.StageRequested.newBuilder()
                    .setJobId("j")
                    .setStep(0)
                    .setStage("ingestion")
                    .setParamsJson("{}")
                    .setRecipeYaml("")
                    .setAttempt(1)
                    .setRequestedAtMs(0)
                    .build())
            .inputDir(dir)
            .outputDir(dir)
            .workDir(Files.createDirectories(dir.resolve("ctx-work")))
            .blobs(blobs)
            .artifacts(artifacts)
            .build();

    Path tree = ctx.fetch(prefix.toString());
    assertEquals("{\"a\":1}", Files.readString(tree.resolve("config.json")));
    assertArrayEquals(new byte[] {4, 2}, Files.readAllBytes(tree.resolve("nested/w.bin")));
    Path one = ctx.fetch(prefix.resolve("config.json").toString());
    assertEquals("config.json", one.getFileName().toString());
    assertEquals(tree, ctx.fetch(tree.toUri().toString()));
    assertThrows(IllegalArgumentException.class, () -> ctx.fetch("http://example.com/model"));
    assertThrows(
        IllegalArgumentException.class, () -> ctx.fetch(new S3Uri(BUCKET, "none/").toString()));
    assertThrows(IllegalStateException.class, ctx::baselineDir);
  }

  private static Path model(String name, int shardBytes) throws IOException {
    Path root = Files.createDirectories(dir.resolve(name));
    Files.writeString(root.resolve("config.json"), "{}");
    Files.writeString(root.resolve("tokenizer.json"), "[" + name + "]");
    Path shards = Files.createDirectories(root.resolve("shards"));
    byte[] chunk = new byte[1 << 20];
    Random random = new Random(name.hashCode());
    try (OutputStream out = Files.newOutputStream(shards.resolve("model-00001.safetensors"))) {
      for (int left = shardBytes; left > 0; left -= chunk.length) {
        random.nextBytes(chunk);
        out.write(chunk, 0, Math.min(left, chunk.length));
      }
    }
    return root;
  }

  private static MinioClient client(String secret) {
    return MinioClient.builder()
        .endpoint(s3.endpoint().toString())
        .credentials(s3.accessKey(), secret)
        .region(EmbeddedS3.REGION)
        .build();
  }
}
