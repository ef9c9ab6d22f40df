package dev.compactor.cli.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compactor distill}: usage errors, and a 2-layer student of the shipped tiny Llama
 * distilled on JSONL task data (checked on the written config and provenance).
 */
class DistillCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  Path data;

  @BeforeEach
  void taskData() throws Exception {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 24; i++) {
      b.append("{\"prompt\":\"Q: ")
          .append(i)
          .append(" plus ")
          .append(i)
          .append("?\\nA:\",\"completion\":\" ")
          .append(2 * i)
          .append(".\"}\n");
    }
    data = Files.writeString(tmp.resolve("task.jsonl"), b.toString());
  }

  private CliRun distill(String... extra) {
    List<String> a =
        new ArrayList<>(List.of("distill", "--teacher", TinyReferenceModel.shipped().toString()));
    a.addAll(List.of(extra));
    return CliRun.of(a.toArray(String[]::new));
  }

  private void usageError(String expected, String... args) {
    CliRun r = distill(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "expected '" + expected + "' in: " + r.err());
    assertFalse(Files.exists(tmp.resolve("out")), "nothing is written on a usage error");
  }

  @Test
  void refusesBadCommandLines() {
    String out = tmp.resolve("out").toString();
    usageError("exactly one of --keep-layers", "--out", out);
    usageError(
        "exactly one of --keep-layers", "--keep-layers", "2", "--student", "x", "--out", out);
    usageError(
        "--data: expected a JSONL file", "--keep-layers", "2", "--data", "nope", "--out", out);
    usageError(
        "not supported yet",
        "--keep-layers",
        "2",
        "--hidden-loss",
        "mse",
        "--teacher-topk",
        "8",
        "--out",
        out);
    usageError(
        "--eval-data: expected a JSONL file",
        "--keep-layers",
        "2",
        "--data",
        data.toString(),
        "--eval-data",
        "nope",
        "--out",
        out);
    usageError("mse or cosine", "--keep-layers", "2", "--hidden-loss", "l2", "--out", out);
    usageError("alpha must be in [0, 1]", "--keep-layers", "2", "--alpha", "2", "--out", out);
  }

  @Test
  void distillsAStudentOnTaskDataWithTheHiddenLoss() throws Exception {
    Path out = tmp.resolve("out");
    CliRun r =
        distill(
            "--keep-layers",
            "2",
            "--steps",
            "12",
            "--lr",
            "1e-3",
            "--data",
            data.toString(),
            "--hidden-loss",
            "cosine",
            "--hidden-weight",
            "0.5",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode s = JSON.readTree(r.out());
    assertEquals(12, s.get("steps").asInt());
    assertTrue(s.get("data").get("completion_only").asBoolean());
    assertEquals(21, s.get("data").get("train_windows").asInt());
    assertEquals(3, s.get("data").get("eval_windows").asInt());
    assertEquals("cosine", s.get("hidden_loss").get("kind").asText());
    JsonNode held = s.get("held_out");
    assertTrue(held.get("kl_after").asDouble() < held.get("kl_before").asDouble(), held.toString());
    assertEquals(2, ModelConfig.read(out).numLayers());
    assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
    JsonNode provenance = JSON.readTree(Files.readString(out.resolve("compactor.json")));
    assertEquals("distill", provenance.get("stage").asText());
    assertEquals("distill", provenance.get("command_line").get(0).asText());
    assertTrue(r.err().contains("step 12/12"), r.err());

    // the written student trains on, from its own directory, against the cached teacher top-k
    Path again = tmp.resolve("again");
    CliRun second =
        distill(
            "--student",
            out.toString(),
            "--steps",
            "3",
            "--lr",
            "1e-3",
            "--data",
            data.toString(),
            "--teacher-topk",
            "16",
            "--out",
            again.toString(),
            "--json");
    assertEquals(0, second.code(), second.err());
    JsonNode s2 = JSON.readTree(second.out());
    assertEquals(16, s2.get("teacher_topk").asInt());
    assertEquals(out.toAbsolutePath().toString(), s2.get("student").asText());
    assertEquals(2, ModelConfig.read(again).numLayers());
  }
}
