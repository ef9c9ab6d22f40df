package dev.compactor.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.tiny.DeepReferenceModel;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs the command line in-process, as the ./compactor launcher would. */
class MainTest {

  private static Path model;
  @TempDir static Path tmp;
  private static Path text;

  @BeforeAll
  static void setUp() throws Exception {
    model = TinyReferenceModel.shipped();
    text = tmp.resolve("held-out.txt");
    String validation = Corpus.europarlEnglish().validationText();
    Files.writeString(text, validation.substring(0, 6_000), StandardCharsets.UTF_8);
  }

  private record Outcome(int code, String out, String err) {}

  private static Outcome run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        Main.run(
            args,
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    return new Outcome(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void evalJsonPrintsOneObjectWithTheMetrics() throws Exception {
    Outcome o =
        run(
            "eval",
            "--model",
            model.toString(),
            "--text",
            text.toString(),
            "--json",
            "--seq-len",
            "128",
            "--stride",
            "64",
            "--baseline",
            model.toString());
    assertEquals(0, o.code(), o.err());
    JsonNode json = new ObjectMapper().readTree(o.out());
    long bytes = Files.readString(text).getBytes(StandardCharsets.UTF_8).length;
    assertEquals(bytes, json.get("tokens").asLong(), "byte tokenizer + BOS scores every byte");
    double bpb = json.get("bitsPerByte").asDouble();
    double ppl = json.get("perplexity").asDouble();
    assertTrue(bpb > 0.5 && bpb < 4.0, "bpb " + bpb);
    // byte tokens: bits per byte is log2 of the per-token perplexity
    assertEquals(Math.log(ppl) / Math.log(2), bpb, 1e-6);
    assertTrue(json.get("tokensPerSecond").asDouble() > 0);
    assertEquals(0, json.get("klDivergence").asDouble(), 1e-5, "a model against itself");
    assertEquals(1.0, json.get("top1Agreement").asDouble());
    assertEquals(1, o.out().strip().lines().count(), "exactly one line of JSON on stdout");
  }

  @Test
  void evalSpeedSweepWithEnergyPrintsLabelledFigures() throws Exception {
    Outcome o =
        run(
            "eval",
            "--model",
            model.toString(),
            "--text",
            text.toString(),
            "--json",
            "--seq-len",
            "256",
            "--energy",
            "--speed-batches",
            "1,2",
            "--speed-contexts",
            "8",
            "--decode-tokens",
            "2",
            "--repeats",
            "1");
    assertEquals(0, o.code(), o.err());
    JsonNode json = new ObjectMapper().readTree(o.out());
    assertEquals(2, json.get("speed").size());
    assertEquals(2, json.get("speed").get(1).get("batch").asInt());
    assertEquals(8, json.get("speed").get(1).get("contextLength").asInt());
    assertTrue(json.get("speed").get(0).get("decodeTokensPerSecond").asDouble() > 0);
    assertTrue(json.get("speed").get(0).has("decodeJoulesPerToken"), o.out());
    String kind = json.get("energy").get("kind").asText();
    assertTrue(kind.equals("measured") || kind.equals("estimated"), kind);
    assertTrue(json.get("energy").get("label").asText().startsWith(kind + ": "));
    Outcome bad =
        run("eval", "--model", model.toString(), "--text", text.toString(), "--repeats", "0");
    assertEquals(2, bad.code(), bad.err());
    assertTrue(bad.err().contains("repeats >= 1"), bad.err());
  }

  @Test
  void evalTextReportAndGenerate() {
    Outcome eval = run("eval", "--model", model.toString(), "--text", text.toString());
    assertEquals(0, eval.code(), eval.err());
    assertTrue(eval.out().contains("bits per byte"), eval.out());
    Outcome gen =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            "The Commission",
            "--max-tokens",
            "40",
            "--temperature",
            "0");
    assertEquals(0, gen.code(), gen.err());
    assertTrue(gen.out().startsWith("The Commission"), gen.out());
    assertTrue(gen.out().strip().length() > "The Commission".length());
  }

  @Test
  void everyCommandExplainsItselfOnHelp() {
    for (Command c : Commands.ALL) {
      for (String[] argv :
          new String[][] {
            {c.name(), "--help"},
            {c.name(), "-h"},
            {"help", c.name()},
            {c.name(), "--json", "--help"}
          }) {
        Outcome o = run(argv);
        assertEquals(0, o.code(), String.join(" ", argv) + ": " + o.err());
        assertTrue(
            o.out().startsWith("usage: compactor " + c.name() + " " + c.usage()),
            String.join(" ", argv) + ": " + o.out());
        assertTrue(o.out().contains(c.summary()), o.out());
        assertEquals("", o.err(), "help is the result, not an error");
      }
    }
    assertTrue(run("--help").out().contains("--help for its options"));
  }

  @Test
  void tinyModelNamesTheShippedCopyAndCopiesItWithoutTraining() throws Exception {
    Outcome where = run("tiny-model");
    assertEquals(0, where.code(), where.err());
    assertTrue(where.out().contains(model.toAbsolutePath().toString()), where.out());
    Path copy = tmp.resolve("tiny-copy");
    long t0 = System.nanoTime();
    Outcome copied = run("tiny-model", "--out", copy.toString());
    assertEquals(0, copied.code(), copied.err());
    assertTrue((System.nanoTime() - t0) / 1e9 < 30, "a copy, not a training run");
    assertTrue(copied.out().contains("validation        ppl"), copied.out());
    assertEquals(
        Files.readString(model.resolve("SHA256SUMS")),
        Files.readString(copy.resolve("SHA256SUMS")));
    Outcome again = run("tiny-model", "--out", copy.toString());
    assertEquals(2, again.code(), "refuses to overwrite: " + again.err());
  }

  @Test
  void tinyModelDeepNamesAndCopiesTheDeepReferenceModel() throws Exception {
    Path deep = DeepReferenceModel.shipped();
    Outcome where = run("tiny-model", "--model", "deep-llama-v1");
    assertEquals(0, where.code(), where.err());
    assertTrue(where.out().contains(deep.toAbsolutePath().toString()), where.out());
    assertTrue(
        where.out().contains("parameters        " + DeepReferenceModel.config().parameterCount()),
        where.out());
    Path copy = tmp.resolve("deep-copy");
    Outcome copied = run("tiny-model", "--model", "deep-llama-v1", "--out", copy.toString());
    assertEquals(0, copied.code(), copied.err());
    assertEquals(
        Files.readString(deep.resolve("SHA256SUMS")), Files.readString(copy.resolve("SHA256SUMS")));
    Outcome unknown = run("tiny-model", "--model", "huge-llama");
    assertEquals(2, unknown.code(), unknown.err());
    assertTrue(
        unknown.err().contains("--model must be tiny-llama-v1 or deep-llama-v1"), unknown.err());
  }

  @Test
  void generateJsonHoldsTheTextAndBothSpeeds() throws Exception {
    Outcome o =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            "The Commission",
            "--max-tokens",
            "12",
            "--temperature",
            "0",
            "--json");
    assertEquals(0, o.code(), o.err());
    assertEquals(1, o.out().strip().lines().count(), "exactly one line of JSON on stdout");
    JsonNode json = new ObjectMapper().readTree(o.out());
    assertEquals("The Commission", json.get("prompt").asText());
    assertEquals(12, json.get("generatedTokens").asInt());
    assertEquals("The Commission".length() + 1, json.get("promptTokens").asInt(), "BOS + bytes");
    assertTrue(json.get("prefillTokensPerSecond").asDouble() > 0, o.out());
    assertTrue(json.get("decodeTokensPerSecond").asDouble() > 0, o.out());
    Outcome text =
        run(
            "generate",
            "--model",
            model.toString(),
            "--prompt",
            "The Commission",
            "--max-tokens",
            "12",
            "--temperature",
            "0");
    assertEquals("The Commission" + json.get("text").asText() + System.lineSeparator(), text.out());
    assertTrue(
        text.err()
            .matches(
                "(?s).*prefill 15 tokens at [0-9.]+ tokens/s, decode 11 tokens at [0-9.]+ tokens/s.*"),
        text.err());
  }

  @Test
  void usageErrorsExitWith2AndFailuresWith1() {
    Outcome unknown = run("eval", "--model", model.toString(), "--txet", "x");
    assertEquals(2, unknown.code());
    assertTrue(unknown.err().contains("unknown option --txet"), unknown.err());
    assertTrue(unknown.err().contains("usage: compactor eval"), unknown.err());
    assertEquals(2, run("eval", "--text", text.toString()).code());
    assertEquals(2, run("frobnicate").code());
    assertEquals(2, run().code());
    assertEquals(0, run("help").code());
    assertEquals(
        2,
        run("eval", "--model", model.toString(), "--text", text.toString(), "--seq-len", "x")
            .code());
    Outcome missing =
        run("eval", "--model", tmp.resolve("nope").toString(), "--text", text.toString());
    assertEquals(1, missing.code());
    assertEquals(1, missing.err().strip().lines().count(), missing.err());
    assertTrue(missing.err().startsWith("error: "), missing.err());
  }

  @Test
  void layerByLayerEvalGivesTheResidentAnswer() throws Exception {
    ObjectMapper json = new ObjectMapper();
    Outcome resident =
        run("eval", "--model", model.toString(), "--text", text.toString(), "--json");
    Outcome streamed =
        run(
            "eval",
            "--model",
            model.toString(),
            "--text",
            text.toString(),
            "--json",
            "--layer-by-layer");
    assertEquals(0, streamed.code(), streamed.err());
    assertEquals(
        json.readTree(resident.out()).get("bitsPerByte").asDouble(),
        json.readTree(streamed.out()).get("bitsPerByte").asDouble(),
        1e-5);
  }

  @Test
  void argsParserIsStrict() throws Exception {
    Args a =
        Args.parse(new String[] {"--n=3", "--flag", "--s", "v"}, Set.of("n", "s"), Set.of("flag"));
    assertEquals(3, a.integer("n", 0));
    assertTrue(a.has("flag"));
    assertEquals("v", a.required("s"));
    assertThrows(
        UsageException.class,
        () -> Args.parse(new String[] {"--n", "1", "--n", "2"}, Set.of("n"), Set.of()));
    assertThrows(
        UsageException.class, () -> Args.parse(new String[] {"--n"}, Set.of("n"), Set.of()));
    assertThrows(
        UsageException.class, () -> Args.parse(new String[] {"stray"}, Set.of("n"), Set.of()));
    assertThrows(
        UsageException.class,
        () -> Args.parse(new String[] {"--flag=1"}, Set.of(), Set.of("flag")));
  }
}
