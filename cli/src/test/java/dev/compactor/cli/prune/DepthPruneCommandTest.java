package dev.compactor.cli.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor prune --drop-layers}: usage errors, scores only, and a layer removed from the
 * shipped tiny Llama (checked on the written checkpoint and config, not through the report).
 */
class DepthPruneCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  Path text;

  @BeforeEach
  void calibrationText() throws Exception {
    String[] words = {
      "the", "parliament", "council", "member", "states", "report", "vote", "commission",
      "president", "debate", "proposal", "european", "budget", "rights", "today", "will"
    };
    Random r = new Random(3);
    StringBuilder b = new StringBuilder();
    while (b.length() < 6000) {
      b.append(words[r.nextInt(words.length)]).append(r.nextInt(9) == 0 ? ".\n" : " ");
    }
    text = Files.writeString(tmp.resolve("calibration.txt"), b.toString());
  }

  private CliRun prune(String... extra) {
    List<String> a =
        new ArrayList<>(List.of("prune", "--model", TinyReferenceModel.shipped().toString()));
    a.addAll(List.of(extra));
    return CliRun.of(a.toArray(String[]::new));
  }

  private void usageError(String expected, String... args) {
    CliRun r = prune(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertEquals("", r.out());
    assertFalse(Files.exists(tmp.resolve("out")), "nothing is written on a usage error");
  }

  @Test
  void usageErrors() {
    String out = tmp.resolve("out").toString();
    usageError(
        "--method and --drop-layers exclude each other",
        "--drop-layers",
        "1",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--out",
        out);
    usageError("--drop-layers 0 only prints the layer scores", "--drop-layers", "0", "--out", out);
    usageError("missing required option --out", "--drop-layers", "1");
    usageError("--drop-layers must be 0 (scores only) or more", "--drop-layers", "-1");
    usageError(
        "expected one of [block_influence, angular]",
        "--drop-layers",
        "1",
        "--depth-method",
        "taylor",
        "--out",
        out);
    usageError(
        "--sparsity and --drop-layers exclude each other",
        "--drop-layers",
        "1",
        "--sparsity=0.5",
        "--out",
        out);
  }

  @Test
  void dropZeroPrintsTheScoresOnly() throws Exception {
    CliRun r =
        prune(
            "--drop-layers",
            "0",
            "--calibration",
            text.toString(),
            "--samples",
            "4",
            "--seq-len",
            "64",
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode s = JSON.readTree(r.out());
    assertEquals(4, s.get("block_influence").size());
    assertEquals(3, s.get("angular").size(), "n = 1 .. L-1");
    assertEquals(0, s.get("removed_layers") == null ? 0 : s.get("removed_layers").size());
    assertEquals(4L * 64, s.get("vectors").asLong());
    assertEquals(4L * 64, s.get("calibration").get("tokens").asLong());
    for (int l = 0; l < 4; l++) {
      assertTrue(r.err().contains("scored layer " + (l + 1) + "/4"), r.err());
      double bi = s.get("block_influence").get(l).asDouble();
      assertTrue(bi > 0 && bi < 2, "BI " + bi);
    }
  }

  @Test
  void angularDropsTheClosestBlockAndWritesAShallowerModel() throws Exception {
    Path out = tmp.resolve("out");
    CliRun r =
        prune(
            "--drop-layers",
            "2",
            "--depth-method",
            "angular",
            "--calibration",
            text.toString(),
            "--samples",
            "4",
            "--seq-len",
            "64",
            "--out",
            out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("removed layers ["), r.out());
    assertTrue(r.out().contains("closest block of 2: layers"), r.out());
    JsonNode provenance = JSON.readTree(out.resolve("compactor.json").toFile());
    JsonNode depth = provenance.get("depth");
    assertEquals("angular", depth.get("method").asText());
    JsonNode removed = depth.get("removed_layers");
    assertEquals(2, removed.size());
    int start = removed.get(0).asInt();
    assertEquals(start + 1, removed.get(1).asInt(), "angular removes a contiguous block");
    assertEquals(start, depth.get("angular").get(1).get("best_start").asInt());
    assertEquals(2, ModelConfig.read(out).numLayers());
    try (TensorSource pruned = ModelDirectory.open(out).weights()) {
      assertTrue(pruned.contains("model.layers.1.mlp.down_proj.weight"));
      assertFalse(pruned.names().stream().anyMatch(n -> n.startsWith("model.layers.2.")));
      assertEquals("angular", pruned.metadata().get("compactor.prune.depth.method"));
    }
  }
}
