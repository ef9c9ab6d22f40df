package dev.compactor.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.cli.quant.CliRun;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TasksCommandTest {

  @TempDir Path tmp;

  @Test
  void scoresBuiltinAndFileTasksAndWritesTheBuiltinOnes() throws Exception {
    CliRun w = CliRun.of("tasks", "--write", tmp.toString(), "--limit", "6");
    assertEquals(0, w.code(), w.err());
    Path ns = tmp.resolve("europarl-next-sentence.jsonl");
    assertEquals(6, Files.readAllLines(ns).size());

    String model = TinyReferenceModel.shipped().toString();
    CliRun r =
        CliRun.of(
            "tasks",
            "--model",
            model,
            "--builtin",
            "europarl-last-word",
            "--task",
            ns.toString(),
            "--limit",
            "6",
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode tasks = new ObjectMapper().readTree(r.out()).get("tasks");
    assertEquals(2, tasks.size());
    assertEquals("europarl-last-word", tasks.get(0).get("task").asText());
    assertTrue(tasks.get(0).has("perplexity") && !tasks.get(0).has("acc_norm"));
    assertEquals("europarl-next-sentence", tasks.get(1).get("task").asText());
    assertEquals(6, tasks.get(1).get("documents").asInt());
    double acc = tasks.get(1).get("acc").asDouble();
    assertTrue(acc >= 0 && acc <= 1 && tasks.get(1).has("acc_norm_stderr"), r.out());

    CliRun bad = CliRun.of("tasks", "--model", model, "--builtin", "hellaswag");
    assertEquals(2, bad.code());
    assertTrue(bad.err().contains("unknown task 'hellaswag'"), bad.err());
  }
}
