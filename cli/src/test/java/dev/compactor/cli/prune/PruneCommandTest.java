package dev.compactor.cli.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor prune}: its usage errors (exit code 2 with the reason, nothing written), and
 * runs on the shipped tiny Llama whose written weights are checked element by element here, not
 * through the pruner's own report.
 */
class PruneCommandTest {

  @TempDir Path tmp;

  private static final Pattern LINEAR =
      Pattern.compile("model\\.layers\\.\\d+\\.(self_attn|mlp)\\.[a-z_]+_proj\\.weight");

  private CliRun prune(String... extra) {
    List<String> a =
        new ArrayList<>(List.of("prune", "--model", TinyReferenceModel.shipped().toString()));
    a.addAll(List.of(extra));
    if (!a.contains("--out")) {
      a.add("--out");
      a.add(tmp.resolve("out").toString());
    }
    return CliRun.of(a.toArray(String[]::new));
  }

  private void usageError(String expected, String... args) {
    CliRun r = prune(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertTrue(r.err().contains("usage: compactor prune --model DIR --method"), r.err());
    assertEquals("", r.out());
    assertFalse(Files.exists(tmp.resolve("out")), "nothing is written on a usage error");
  }

  @Test
  void sparsityXorPattern() {
    usageError("one of --sparsity S (0 < S < 1) or --pattern N:M", "--method", "magnitude");
    usageError(
        "--sparsity and --pattern exclude each other",
        "--method",
        "wanda",
        "--sparsity",
        "0.5",
        "--pattern",
        "2:4");
  }

  @Test
  void valuesAreChecked() {
    usageError(
        "pattern must be N:M (e.g. 2:4), found '2-4'", "--method", "wanda", "--pattern", "2-4");
    usageError("N:M pattern needs 1 <= N < M", "--method", "sparsegpt", "--pattern", "4:4");
    usageError("sparsity must be in (0, 1)", "--method", "magnitude", "--sparsity", "1.5");
    usageError("sparsity must be in (0, 1)", "--method", "magnitude", "--sparsity", "0");
    usageError(
        "--sparsity expects a number, found 'half'", "--method", "wanda", "--sparsity", "half");
    usageError(
        "--samples must be at least 1", "--method", "wanda", "--sparsity", "0.5", "--samples", "0");
  }

  @Test
  void methodMustBeKnown() {
    usageError("unknown pruning method 'obs'", "--method", "obs", "--sparsity", "0.5");
    usageError("missing required option --method", "--sparsity", "0.5");
  }

  @Test
  void inputsAndOutputAreChecked() throws Exception {
    CliRun noOut =
        CliRun.of(
            "prune",
            "--model",
            TinyReferenceModel.shipped().toString(),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5");
    assertEquals(2, noOut.code());
    assertTrue(noOut.err().contains("missing required option --out"), noOut.err());
    Path full = Files.createDirectories(tmp.resolve("full"));
    Files.writeString(full.resolve("x"), "x");
    usageError(
        "must be absent or empty",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--out",
        full.toString());
    usageError(
        "--calibration: expected a text file",
        "--method",
        "wanda",
        "--sparsity",
        "0.5",
        "--calibration",
        tmp.resolve("missing.txt").toString());
    usageError(
        "magnitude pruning reads no calibration text",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--samples",
        "4");
    CliRun noModel =
        CliRun.of(
            "prune",
            "--model",
            tmp.resolve("nope").toString(),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--out",
            tmp.resolve("out").toString());
    assertEquals(2, noModel.code());
    assertTrue(
        noModel.err().contains("expected a model directory with config.json"), noModel.err());
    usageError("unknown option --sparsty", "--method", "magnitude", "--sparsty", "0.5");
  }

  @Test
  void depthExcludesWeightOptionsAndStructuredTakesNoWeightOptions() {
    usageError(
        "--method and --drop-layers exclude each other",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--drop-layers",
        "2");
    usageError("--method: structured pruning", "--method", "magnitude", "--heads=0.5");
    usageError("--sparsity: structured pruning", "--channels", "0.25", "--sparsity", "0.5");
    usageError("heads must be a fraction in [0, 1)", "--heads", "2");
    usageError("expected activation or fluctuation", "--heads", "0.5", "--importance", "wanda");
    usageError("removes 0 of the 2 KV groups", "--heads", "0.1");
    usageError(
        "widths per_layer spreads the removed MLP channels",
        "--heads",
        "0.5",
        "--widths",
        "per_layer");
    usageError("expected uniform or per_layer", "--channels", "0.25", "--widths", "layerwise");
  }

  @Test
  void structuredPruningWritesSmallerTensorsAndTheirConfig() throws Exception {
    Path out = tmp.resolve("structured");
    CliRun r =
        prune(
            "--heads",
            "0.5",
            "--head-mode",
            "query_heads",
            "--channels",
            "0.25",
            "--importance",
            "fluctuation",
            "--compensate",
            "--samples",
            "4",
            "--seq-len",
            "64",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("[100%] layer 4/4"), r.err());
    JsonNode summary = new ObjectMapper().readTree(r.out());
    assertEquals(2, summary.get("heads_after").asInt());
    assertEquals(2, summary.get("kv_heads_after").asInt());
    assertEquals(384, summary.get("channels_after").asInt());
    JsonNode layer0 = summary.get("layers").get(0);
    assertEquals(2, layer0.get("removed_heads").size());
    assertEquals(4, layer0.get("head_scores").size());
    assertEquals(128, layer0.get("removed_channels").size());
    JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
    assertEquals(2, config.get("num_attention_heads").asInt());
    assertEquals(32, config.get("head_dim").asInt());
    assertEquals(384, config.get("intermediate_size").asInt());
    assertTrue(config.get("attention_bias").asBoolean() && config.get("mlp_bias").asBoolean());
    assertEquals("structured", config.at("/compactor_provenance/settings/method").asText());
    assertTrue(Files.isRegularFile(out.resolve("compactor.json")));
    try (TensorSource s = ModelDirectory.open(out).weights()) {
      assertArrayEquals(
          new long[] {64, 128}, s.info("model.layers.0.self_attn.q_proj.weight").shape());
      assertArrayEquals(
          new long[] {128, 64}, s.info("model.layers.3.self_attn.o_proj.weight").shape());
      assertArrayEquals(new long[] {128}, s.info("model.layers.3.mlp.down_proj.bias").shape());
      assertArrayEquals(new long[] {384}, s.info("model.layers.3.mlp.up_proj.bias").shape());
    }
  }

  @Test
  void magnitudeHalfZeroesTheSmallerHalfOfEveryRow() throws Exception {
    Path out = tmp.resolve("mag");
    CliRun r =
        prune("--method", "magnitude", "--sparsity", "0.5", "--out", out.toString(), "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode summary = new ObjectMapper().readTree(r.out());
    assertEquals("magnitude", summary.get("method").asText());
    assertFalse(summary.has("calibration"));

    checkHalfOfEveryRowPruned(out, summary, true);
    assertTrue(Files.isRegularFile(out.resolve("config.json")));
    assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
  }

  @Test
  void sparseGptTwoFourKeepsAtMostTwoOfEveryFourAndUpdatesTheKeptWeights() throws Exception {
    Path out = tmp.resolve("sgpt");
    CliRun r =
        prune(
            "--method",
            "sparsegpt",
            "--pattern",
            "2:4",
            "--samples",
            "4",
            "--seq-len",
            "32",
            "--out",
            out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("calibration: 4 windows of 32 tokens from builtin"), r.err());
    assertTrue(r.out().contains("overall sparsity 0.5000"), r.out());

    long elements = 0;
    long zeros = 0;
    long changed = 0;
    try (TensorSource src = ModelDirectory.open(TinyReferenceModel.shipped()).weights();
        TensorSource dst = ModelDirectory.open(out).weights()) {
      for (String name : src.names()) {
        if (!LINEAR.matcher(name).matches()) {
          assertTrue(src.raw(name).equals(dst.raw(name)), name + " is copied byte for byte");
          continue;
        }
        float[] a = src.readFloats(name);
        float[] b = dst.readFloats(name);
        long[] shape = src.info(name).shape();
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        for (int i = 0; i < rows; i++) {
          for (int g = 0; g < cols; g += 4) {
            int groupZeros = 0;
            for (int j = g; j < g + 4; j++) {
              int k = i * cols + j;
              if (b[k] == 0f) {
                groupZeros++;
              } else if (b[k] != a[k]) {
                changed++;
              }
            }
            assertTrue(groupZeros >= 2, name + " row " + i + " group " + g + ": " + groupZeros);
            zeros += groupZeros;
          }
        }
        elements += (long) rows * cols;
      }
    }
    double sparsity = (double) zeros / elements;
    assertTrue(sparsity >= 0.5 && sparsity < 0.5 + 1e-4, "sparsity " + sparsity);
    // SparseGPT compensates: most surviving weights move (magnitude or Wanda would move none)
    assertTrue(changed > (elements - zeros) / 2, changed + " of " + (elements - zeros));
  }

  @Test
  void wandaHalfZeroesHalfOfEveryRowAndKeepsTheRest() throws Exception {
    Path out = tmp.resolve("wanda");
    CliRun r =
        prune(
            "--method",
            "wanda",
            "--sparsity",
            "0.5",
            "--samples",
            "2",
            "--seq-len",
            "32",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode summary = new ObjectMapper().readTree(r.out());
    assertEquals("wanda", summary.get("method").asText());
    assertEquals(2 * 32, summary.get("calibration").get("tokens").asLong());
    assertEquals("builtin:europarl", summary.get("calibration").get("source").asText());
    checkHalfOfEveryRowPruned(out, summary, false);
  }

  /**
   * Every decoder linear of {@code out} has exactly half of every row zero and the other half
   * bit-equal to the source; everything else is copied byte for byte; the summary's counts agree.
   *
   * @param smallest the zeroed weights are the smallest |W| of their row (magnitude)
   */
  private static void checkHalfOfEveryRowPruned(Path out, JsonNode summary, boolean smallest)
      throws Exception {
    int linears = 0;
    long elements = 0;
    long zeros = 0;
    try (TensorSource src = ModelDirectory.open(TinyReferenceModel.shipped()).weights();
        TensorSource dst = ModelDirectory.open(out).weights()) {
      assertEquals(src.names(), dst.names());
      for (String name : src.names()) {
        float[] a = src.readFloats(name);
        float[] b = dst.readFloats(name);
        if (!LINEAR.matcher(name).matches()) {
          assertTrue(src.raw(name).equals(dst.raw(name)), name + " is copied byte for byte");
          continue;
        }
        linears++;
        long[] shape = src.info(name).shape();
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        for (int i = 0; i < rows; i++) {
          int rowZeros = 0;
          float maxPruned = 0;
          float minKept = Float.POSITIVE_INFINITY;
          for (int j = 0; j < cols; j++) {
            int k = i * cols + j;
            if (b[k] == 0f) {
              rowZeros++;
              maxPruned = Math.max(maxPruned, Math.abs(a[k]));
            } else {
              assertEquals(a[k], b[k], name + ": a kept weight is unchanged");
              minKept = Math.min(minKept, Math.abs(a[k]));
            }
          }
          assertEquals(cols / 2, rowZeros, name + " row " + i);
          assertTrue(
              !smallest || maxPruned <= minKept, name + " row " + i + ": the smallest are pruned");
          zeros += rowZeros;
        }
        elements += (long) rows * cols;
      }
    }
    assertEquals(28, linears, "4 layers of 7 linears");
    assertEquals(linears, summary.get("pruned_tensors").asInt());
    assertEquals(elements, summary.get("pruned_elements").asLong());
    assertEquals(0.5, (double) zeros / elements, 0.0);
    assertEquals(0.5, summary.get("overall_sparsity").asDouble(), 0.0);
  }

  @Test
  void formatAndJointQuantizationOptionsAreChecked() {
    usageError(
        "marlin-24",
        "--method",
        "sparsegpt",
        "--pattern",
        "2:4",
        "--wbits",
        "4",
        "--format",
        "sparse-24-bitmask");
    usageError(
        "joint quantization is SparseGPT's",
        "--method",
        "magnitude",
        "--pattern",
        "2:4",
        "--wbits",
        "4");
    usageError(
        "sparse-24-bitmask with sparsity 0.5",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--format",
        "sparse-24-bitmask");
    usageError(
        "--group-size needs --wbits",
        "--method",
        "sparsegpt",
        "--pattern",
        "2:4",
        "--group-size",
        "64");
    usageError(
        "unknown pruned-model format 'csr'",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--format",
        "csr");
  }

  @Test
  void twoFourBitmaskOutputIsSmallerAndDecodesToTheDenseResult() throws Exception {
    Path dense = tmp.resolve("dense");
    Path sparse = tmp.resolve("sparse");
    assertEquals(
        0, prune("--method", "magnitude", "--pattern", "2:4", "--out", dense.toString()).code());
    CliRun r =
        prune(
            "--method",
            "magnitude",
            "--pattern",
            "2:4",
            "--format",
            "sparse-24-bitmask",
            "--out",
            sparse.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    assertEquals("sparse-24-bitmask", new ObjectMapper().readTree(r.out()).get("format").asText());
    try (var a = dev.compactor.core.io.Checkpoints.open(dense);
        var b = dev.compactor.core.io.Checkpoints.open(sparse)) {
      for (String name : a.names()) {
        assertEquals(a.raw(name), b.raw(name), name);
      }
    }
    assertTrue(
        Files.size(sparse.resolve("model.safetensors"))
            < Files.size(dense.resolve("model.safetensors")));
  }

  @Test
  void recoveryFollowsThePruningAndReportsTheHeldOutCheck() throws Exception {
    usageError(
        "recovery options need --recover-steps N",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--recover-lr",
        "0.001");
    usageError(
        "recovery.rounds must be in [1, steps]",
        "--method",
        "magnitude",
        "--sparsity",
        "0.5",
        "--recover-steps",
        "2",
        "--rounds",
        "3");
    CliRun r =
        prune(
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--recover-steps",
            "8",
            "--recover-lr",
            "0.001",
            "--recover-windows",
            "16",
            "--recover-seq-len",
            "32",
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode j = new ObjectMapper().readTree(r.out());
    assertEquals(tmp.resolve("out").toAbsolutePath().toString(), j.get("out").asText());
    JsonNode rec = j.get("recovery");
    assertEquals(8, rec.get("steps").asInt());
    double before = rec.get("held_out_kl_before").asDouble();
    double after = rec.get("held_out_kl_after").asDouble();
    assertEquals(rec.get("kept").asBoolean(), after < before, rec.toString());
    try (TensorSource o = dev.compactor.core.io.Checkpoints.open(tmp.resolve("out"))) {
      float[] w = o.readFloats("model.layers.0.mlp.up_proj.weight");
      long zeros = 0;
      for (float v : w) {
        zeros += v == 0f ? 1 : 0;
      }
      assertEquals(0.5, (double) zeros / w.length, 1e-3, "the pruned zeros are kept");
    }
    assertTrue(
        j.get("files").toString().contains("model.safetensors"),
        "files of --out: " + j.get("files"));
  }
}
