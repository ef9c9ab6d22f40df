package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.events.StageRequested;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Jobs read only the files and buckets they are allowed to, compared canonically. */
class SourcePolicyTest {

  @TempDir Path tmp;

  @Test
  void filesInsideARootAreAllowedAndOthersRefused() throws Exception {
    Path root = Files.createDirectories(tmp.resolve("models"));
    Path model = Files.createDirectories(root.resolve("tiny"));
    SourcePolicy p = SourcePolicy.of(List.of(root), Set.of());
    assertEquals(Optional.empty(), p.problem(model.toUri().toString()));
    Optional<String> passwd = p.problem("file:///etc/passwd");
    assertTrue(passwd.isPresent());
    assertTrue(passwd.get().contains("outside the allowed file roots"), passwd.get());
  }

  @Test
  void dotDotAndSymlinksOutOfARootAreRefused() throws Exception {
    Path root = Files.createDirectories(tmp.resolve("models"));
    Path outside = Files.createDirectories(tmp.resolve("other-user-cache"));
    Files.createSymbolicLink(root.resolve("link"), outside);
    SourcePolicy p = SourcePolicy.of(List.of(root), Set.of());
    assertTrue(p.problem("file://" + root + "/../other-user-cache").isPresent());
    Optional<String> viaLink = p.problem(root.resolve("link").toUri().toString());
    assertTrue(viaLink.isPresent(), "a symlink inside the root pointing outside");
    assertTrue(viaLink.get().contains("resolves to"), viaLink.get());
    // a link under a path that does not exist yet is still followed
    assertTrue(p.problem(root.resolve("link/not-yet").toUri().toString()).isPresent());
  }

  @Test
  void noFileRootsMeansNoFileSources() {
    SourcePolicy p = SourcePolicy.parse("", "compactor-data");
    assertTrue(p.problem(tmp.toUri().toString()).orElseThrow().contains("none configured"));
  }

  @Test
  void bucketsAreAllowListed() {
    SourcePolicy p = SourcePolicy.parse("", "compactor-data, compactor-artifacts");
    assertEquals(Optional.empty(), p.problem("s3://compactor-data/models/x/"));
    assertTrue(p.problem("s3://someone-elses/secret.txt").orElseThrow().contains("someone-elses"));
  }

  @Test
  void aWorkerDefaultsToItsArtifactAndDataBucketsAndNoFiles() {
    StageConfig c =
        StageConfig.of(
            Map.of(
                "COMPACTOR_S3_ACCESS_KEY", "k",
                "COMPACTOR_S3_SECRET_KEY", "s",
                "COMPACTOR_STAGE", "ingestion",
                "COMPACTOR_S3_BUCKET", "art"));
    SourcePolicy p = SourcePolicy.of(c);
    assertEquals(Optional.empty(), p.problem("s3://art/x"));
    assertEquals(Optional.empty(), p.problem("s3://compactor-data/x"));
    assertTrue(p.problem("s3://other/x").isPresent());
    assertTrue(p.problem("file:///etc/passwd").isPresent());
  }

  @Test
  void fetchIsWhereTheCheckCounts() throws Exception {
    Path root = Files.createDirectories(tmp.resolve("models"));
    Files.writeString(root.resolve("calib.txt"), "hello");
    StageRequested req =
        StageRequested.newBuilder()
            .setJobId("j")
            .setStep(0)
            .setStage("ingestion")
            .setAttempt(1)
            .setParamsJson("{}")
            .setModelUri("file:///etc/passwd")
            .setRecipeYaml("name: x")
            .setRequestedAtMs(0)
            .build();
    StageContext ctx =
        StageContext.builder(req)
            .inputDir(tmp)
            .outputDir(tmp)
            .workDir(tmp)
            .sources(SourcePolicy.of(List.of(root), Set.of()))
            .build();
    assertEquals(
        root.resolve("calib.txt"), ctx.fetch(root.resolve("calib.txt").toUri().toString()));
    SourcePolicy.SourceRefusedException e =
        assertThrows(
            SourcePolicy.SourceRefusedException.class, () -> ctx.fetch("file:///etc/passwd"));
    assertTrue(e.getMessage().contains("/etc/passwd"), e.getMessage());
    assertTrue(!Failures.retriable(e), "a refused source is not retried");
  }
}
