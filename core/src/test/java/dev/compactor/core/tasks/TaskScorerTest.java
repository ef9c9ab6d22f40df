package dev.compactor.core.tasks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Task scoring against make_task_golden.py: lm-eval's log-likelihood rules written independently in
 * Python, on the shipped tiny model's plain-torch forward (multiple choice with a trailing-space
 * context, an empty context, a context cut to the model's window and a newline delimiter;
 * continuations).
 */
class TaskScorerTest {

  private static final Path GOLDEN = Path.of("src/test/resources/golden/tasks");

  static Transformer model;
  static TextTokenizer tokenizer;
  static JsonNode expected;

  @BeforeAll
  static void load() throws Exception {
    model = Transformer.load(TinyReferenceModel.shipped(), Device.cpu());
    tokenizer = Tokenizers.forModel(TinyReferenceModel.shipped());
    expected = new ObjectMapper().readTree(GOLDEN.resolve("expected.json").toFile());
  }

  @AfterAll
  static void close() throws Exception {
    model.close();
    tokenizer.close();
  }

  private static void assertScores(String file, String key) throws Exception {
    List<TaskDoc> docs = TaskFile.read(GOLDEN.resolve(file));
    List<TaskScorer.Scored> scored =
        new TaskScorer(model, tokenizer).score(docs, ProgressListener.NONE);
    for (int d = 0; d < docs.size(); d++) {
      JsonNode want = expected.get(key).get(d);
      assertEquals(want.get("id").asText(), docs.get(d).id());
      double[] ll = scored.get(d).logLikelihood();
      assertEquals(want.get("ll").size(), ll.length);
      for (int i = 0; i < ll.length; i++) {
        double w = want.get("ll").get(i).asDouble();
        assertEquals(w, ll[i], 2e-3 + 1e-5 * Math.abs(w), "doc " + docs.get(d).id() + " #" + i);
        assertEquals(
            want.get("greedy").get(i).asBoolean(),
            scored.get(d).greedy()[i],
            "greedy " + docs.get(d).id());
      }
    }
    TaskResult r = TaskScorer.aggregate(key, scored);
    JsonNode m = expected.get(key + "_metrics");
    assertEquals(m.get("acc").asDouble(), r.acc(), 1e-12);
    assertEquals(m.get("acc_stderr").asDouble(), r.accStderr(), 1e-12);
    if (m.has("acc_norm")) {
      assertEquals(m.get("acc_norm").asDouble(), r.accNorm(), 1e-12);
      assertEquals(m.get("acc_norm_stderr").asDouble(), r.accNormStderr(), 1e-12);
    } else {
      assertEquals(m.get("perplexity").asDouble(), r.perplexity(), 1e-4 * r.perplexity());
    }
  }

  @Test
  void multipleChoiceMatchesTheIndependentReference() throws Exception {
    assertScores("mc.jsonl", "mc");
  }

  @Test
  void continuationsMatchTheIndependentReference() throws Exception {
    assertScores("cont.jsonl", "cont");
  }

  @Test
  void trailingContextWhitespaceMovesToTheContinuation() {
    TaskScorer s = new TaskScorer(model, tokenizer);
    int[][] a = s.encodePair("the vote ", "today");
    int[][] b = s.encodePair("the vote", " today");
    assertArrayEquals(a[0], b[0]);
    assertArrayEquals(a[1], b[1]);
    assertEquals(" today".length(), a[1].length, "byte tokens of ' today'");
  }

  @Test
  void accNormDividesByTheChoiceLength() {
    TaskDoc.MultipleChoice doc =
        new TaskDoc.MultipleChoice("x", "c", List.of("ab", "abcdef"), 1, " ");
    // -4 over 2 characters is worse than -6 over 6: acc picks choice 0, acc_norm choice 1
    TaskScorer.Scored s =
        new TaskScorer.Scored(doc, new double[] {-4, -6}, new boolean[2], new int[] {3, 7});
    assertEquals(0, s.predicted());
    assertEquals(1, s.predictedNorm());
    TaskResult r = TaskScorer.aggregate("t", List.of(s, s));
    assertEquals(0.0, r.acc());
    assertEquals(1.0, r.accNorm());
    assertEquals(0.0, r.accStderr());
  }

  @Test
  void standardErrorIsTheSampleDeviationOverRootN() {
    // values 1, 0, 1, 1: mean 0.75, sample variance 0.25, stderr sqrt(0.25)/2
    assertEquals(0.25, TaskResult.stderr(new double[] {1, 0, 1, 1}), 1e-15);
    assertTrue(Double.isNaN(TaskResult.stderr(new double[] {1})));
  }

  @Test
  void badTaskFilesAreRefusedWithTheirLine(@TempDir Path tmp) throws Exception {
    String[][] cases = {
      {"{\"context\": \"a\", \"choices\": [\"x\", \"y\"], \"gold\": 2}", ":1: gold must index"},
      {"\n{\"context\": \"a\"}", ":2: give either \"choices\""},
      {"{\"context\": 3, \"continuation\": \"b\"}", ":1: \"context\" must be a string"},
      {"not json", ":1: not JSON"},
      {"{\"context\": \"a\", \"choices\": [\"x\", 4], \"gold\": 0}", "every choice must be"},
      {"", "no task documents"},
    };
    for (String[] c : cases) {
      Path f = tmp.resolve("t.jsonl");
      Files.writeString(f, c[0]);
      Exception e = assertThrows(java.io.IOException.class, () -> TaskFile.read(f));
      assertTrue(e.getMessage().contains(c[1]), c[1] + " in " + e.getMessage());
    }
    Path huge = tmp.resolve("huge.jsonl");
    Files.writeString(huge, "x".repeat(TaskFile.MAX_LINE + 10));
    Exception e = assertThrows(java.io.IOException.class, () -> TaskFile.read(huge));
    assertTrue(e.getMessage().contains("line longer than"), e.getMessage());
  }

  @Test
  void builtinTasksAreDeterministicAndWellFormed(@TempDir Path tmp) throws Exception {
    List<TaskDoc> a = BuiltinTasks.build(BuiltinTasks.NEXT_SENTENCE, 20, 7);
    List<TaskDoc> b = BuiltinTasks.build(BuiltinTasks.NEXT_SENTENCE, 20, 7);
    assertEquals(20, a.size());
    assertEquals(a, b);
    for (TaskDoc d : a) {
      TaskDoc.MultipleChoice mc = (TaskDoc.MultipleChoice) d;
      assertEquals(4, mc.choices().size());
      assertEquals(4, mc.choices().stream().distinct().count());
    }
    List<TaskDoc> words = BuiltinTasks.build(BuiltinTasks.LAST_WORD, 20, 7);
    assertEquals(20, words.size());
    for (TaskDoc d : words) {
      String w = ((TaskDoc.Continuation) d).continuation();
      assertTrue(w.matches(" [A-Za-z]{3,}"), w);
    }
    Path f = tmp.resolve("round.jsonl");
    Files.write(f, a.stream().map(TaskFile::line).toList());
    assertEquals(a, TaskFile.read(f), "written and read back");
  }

  @Test
  void thePhraseTaskCompletesFrequentTrainingTrigramsAndItsSplitsAreDisjoint() throws Exception {
    List<String> trigrams = BuiltinTasks.frequentTrigrams();
    assertEquals(BuiltinTasks.PHRASES, trigrams.size());
    assertTrue(trigrams.contains("the European Union"), trigrams.toString());
    List<TaskDoc> test = BuiltinTasks.build(BuiltinTasks.PHRASE, 1000, 0);
    List<TaskDoc> train = BuiltinTasks.buildFromTraining(BuiltinTasks.PHRASE, 300, 0);
    assertTrue(test.size() >= 30 && train.size() == 300, test.size() + " / " + train.size());
    java.util.Set<String> contexts = new java.util.HashSet<>();
    for (TaskDoc d : test) {
      String[] w = d.context().split(" ");
      String word = ((TaskDoc.Continuation) d).continuation();
      assertTrue(word.matches(" [A-Za-z]{4,}"), word);
      // the context ends with the first two words of a frequent trigram, the target is the third
      String tri = w[w.length - 2] + " " + w[w.length - 1] + word;
      assertTrue(trigrams.contains(tri), tri);
      assertTrue(w.length >= 5 && d.context().length() <= 160, d.context());
      contexts.add(d.context());
    }
    // the train split is made of other speeches; a sentence repeated across speeches is rare
    long shared = train.stream().filter(d -> contexts.contains(d.context())).count();
    assertTrue(shared <= 2, shared + " shared contexts");
  }
}
