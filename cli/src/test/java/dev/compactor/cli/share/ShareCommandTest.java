package dev.compactor.cli.share;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor share} on the shipped tiny Llama: a bad ratio writes nothing; a shared basis
 * stores fewer parameters (the file really is smaller, by the bytes the report says) and scores
 * itself on held-out text; {@code --merge} writes every tensor back, with the input's count.
 */
class ShareCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;

  @Test
  void aBadRatioWritesNothing() {
    CliRun r =
        CliRun.of(
            "share",
            "--model",
            TinyReferenceModel.shipped().toString(),
            "--ratio",
            "1.5",
            "--out",
            tmp.resolve("out").toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--ratio: expected a fraction in (0, 1)"), r.err());
    assertFalse(Files.exists(tmp.resolve("out")));
  }

  @Test
  void aSharedBasisIsSmallerOnDiskAndMergesBackToTheInputsCount() throws Exception {
    Path model = TinyReferenceModel.shipped();
    Path shared = tmp.resolve("shared");
    CliRun r =
        CliRun.of(
            "share",
            "--model",
            model.toString(),
            "--form",
            "basis",
            "--ratio",
            "0.7",
            "--max-bytes",
            "2000",
            "--out",
            shared.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode j = JSON.readTree(r.out());
    long before = j.get("parameters_before").asLong();
    long after = j.get("parameters_after").asLong();
    assertTrue(after < 0.8 * before, r.out());
    assertTrue(j.get("references").asInt() > 0, r.out());
    long fileBefore = Files.size(model.resolve("model.safetensors"));
    long fileAfter = Files.size(shared.resolve("model.safetensors"));
    long saved = j.get("weight_bytes_before").asLong() - j.get("weight_bytes_after").asLong();
    // the file saves the weight bytes, less a header that lists a u and a v per factorized linear
    assertTrue(saved > 1_000_000, r.out());
    assertTrue(
        fileBefore - fileAfter >= saved - 4096, fileBefore + " -> " + fileAfter + ", " + saved);
    JsonNode q = j.get("quality");
    assertTrue(q.get("tokens").asInt() > 0 && q.get("kl_divergence").asDouble() > 0, r.out());

    CliRun m =
        CliRun.of(
            "share",
            "--model",
            shared.toString(),
            "--merge",
            "--no-eval",
            "--out",
            tmp.resolve("merged").toString(),
            "--json");
    assertEquals(0, m.code(), m.err());
    JsonNode mj = JSON.readTree(m.out());
    assertEquals(before, mj.get("parameters_after").asLong(), m.out());
    assertEquals(j.get("references").asInt(), mj.get("merged_references").asInt(), m.out());
  }
}
