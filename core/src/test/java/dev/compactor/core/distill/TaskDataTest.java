package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TaskDataTest {

  private final ByteTokenizer bytes = new ByteTokenizer();

  @Test
  void tokenizesPromptAndCompletionAndMasksTheCompletion(@TempDir Path tmp) throws Exception {
    Path f = tmp.resolve("t.jsonl");
    Files.writeString(
        f,
        "{\"prompt\":\"ab\",\"completion\":\"cd\"}\n\n{\"prompt\":\"x\",\"completion\":\"y\"}\n");
    List<TaskData.Example> ex = TaskData.read(f, bytes);
    assertEquals(2, ex.size());
    // BOS (256) + prompt, completion, EOS (256)
    assertArrayEquals(new int[] {256, 'a', 'b', 'c', 'd', 256}, ex.get(0).tokens());
    assertEquals(3, ex.get(0).promptLength());
    assertEquals(3, ex.get(1).line());
    assertEquals(6, TaskData.longest(ex));
    TaskData.Windows w = TaskData.windows(ex, 5, 0);
    assertArrayEquals(new int[] {256, 'a', 'b', 'c', 'd', 256}, w.windows().get(0));
    // targets: a b c d EOS -> only c, d, EOS count
    assertArrayEquals(new boolean[] {false, false, true, true, true}, w.targetMasks().get(0));
    assertArrayEquals(new int[] {256, 'x', 'y', 256, 0, 0}, w.windows().get(1));
    assertArrayEquals(new boolean[] {false, true, true, false, false}, w.targetMasks().get(1));
    assertEquals(5, w.completionTokens());
    IllegalArgumentException tooLong =
        assertThrows(IllegalArgumentException.class, () -> TaskData.windows(ex, 4, 0));
    assertTrue(tooLong.getMessage().startsWith("line 1:"), tooLong.getMessage());
  }

  @Test
  void hostileLinesAreRefusedWithTheirLineNumber(@TempDir Path tmp) throws Exception {
    String ok = "{\"prompt\":\"a\",\"completion\":\"b\"}\n";
    String[][] cases = {
      {"{\"prompt\":\"a\",", "not JSON"},
      {"[1,2]", "expected a JSON object"},
      {"{\"prompt\":\"a\"}", "missing \"completion\""},
      {"{\"completion\":\"a\"}", "missing \"prompt\""},
      {"{\"prompt\":3,\"completion\":\"a\"}", "\"prompt\" must be a string"},
      {"{\"prompt\":\"a\",\"completion\":\"\"}", "is empty"},
      {"{\"prompt\":\"" + "a".repeat(TaskData.MAX_LINE_BYTES) + "\"}", "longer than"},
    };
    for (String[] c : cases) {
      Path f = tmp.resolve("bad.jsonl");
      Files.writeString(f, ok + ok + c[0] + "\n" + ok);
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> TaskData.read(f, bytes), c[1]);
      assertTrue(e.getMessage().contains(":3: "), e.getMessage());
      assertTrue(e.getMessage().contains(c[1]), e.getMessage());
    }
    Path utf = tmp.resolve("utf.jsonl");
    byte[] bad =
        "{\"prompt\":\"\u00ff\",\"completion\":\"b\"}\n".getBytes(StandardCharsets.ISO_8859_1);
    Files.write(utf, bad);
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> TaskData.read(utf, bytes));
    assertTrue(e.getMessage().contains(":1: not valid UTF-8"), e.getMessage());
    Path chat = tmp.resolve("chat.jsonl");
    Files.writeString(chat, ok + "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n");
    IllegalArgumentException u =
        assertThrows(IllegalArgumentException.class, () -> TaskData.read(chat, bytes));
    assertTrue(
        u.getMessage().contains(":2: \"messages\" needs the model's chat template"),
        u.getMessage());
    Path empty = tmp.resolve("empty.jsonl");
    Files.writeString(empty, "\n\n");
    assertThrows(IllegalArgumentException.class, () -> TaskData.read(empty, bytes));
  }

  @Test
  void distillingOnTaskDataLowersTheCompletionLoss(@TempDir Path tmp) throws Exception {
    StringBuilder jsonl = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      jsonl.append("{\"prompt\":\"q").append(i % 4).append("=\",\"completion\":\"");
      jsonl.append("abcd".charAt(i % 4)).append("\"}\n");
    }
    Path f = tmp.resolve("t.jsonl");
    Files.writeString(f, jsonl);
    List<TaskData.Example> ex = TaskData.read(f, bytes);
    int seq = TaskData.longest(ex) - 1;
    TaskData.Windows w = TaskData.windows(ex, seq, 256);
    ModelConfig config = ModelConfig.llama(257, 32, 48, 1, 4, 2, 64);
    DistillationSpec spec = new DistillationSpec(1f, 0f, 40, 4, 1e-2f, 2, 0f, 1f, 0, 3L);
    try (Transformer teacher = Transformer.randomInit(config, 1, Device.cpu());
        Transformer student = Transformer.randomInit(config, 2, Device.cpu())) {
      // alpha 0: the loss is the cross-entropy on the completion (and EOS) tokens alone
      DistillationReport r =
          new Distiller(spec, new HiddenStateLossTest.NoCheckpoints())
              .distill(teacher, Trainable.of(student), w.windows(), w.targetMasks());
      assertTrue(r.endLoss() < 0.3 * r.startLoss(), r.startLoss() + " -> " + r.endLoss());
      List<boolean[]> wrong = new ArrayList<>(w.targetMasks());
      wrong.remove(0);
      assertThrows(
          IllegalArgumentException.class,
          () ->
              new Distiller(spec, new HiddenStateLossTest.NoCheckpoints())
                  .distill(teacher, Trainable.of(student), w.windows(), wrong));
    }
  }
}
