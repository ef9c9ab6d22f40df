package dev.compactor.cli.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Keeps {@code cli/docs/quality-table.md} true: runs {@code compactor quality-table --model
 * models/tiny-llama-v1} exactly as the document says it was run (the shipped tiny reference model,
 * the default 100 kB of the Europarl test split) and compares the printed table with the one in the
 * document, line for line. Only what legitimately differs between runs is left out: the model's
 * directory (the weights are compared by the sha256 the command prints), the run time at the end,
 * and one unit in the last printed digit of a decimal figure: libtorch picks its float kernels by
 * CPU (AVX2 vs AVX-512), so the same weights can round one way on this machine and the other on
 * CI's (AWQ's top-1 printed 96.45 here and 96.46 there). Integers (byte counts), labels and the
 * number of fields stay exact. Skipped, with a reason, only in a checkout without the shipped
 * model.
 */
public class QualityTableDocIT {

  static final Path DOC = Path.of("docs/quality-table.md");

  /** failsafe runs in {@code cli/}; the document's command runs in the repository root. */
  static final Path MODEL_DIR = Path.of("..", "models", "tiny-llama-v1");

  static final Pattern MODEL = Pattern.compile("^model: .*\\((.*)\\)$");
  static final Pattern SECONDS = Pattern.compile(" \\d+ s\\.$");

  /** The first fenced block that starts with {@code model:}. */
  public static List<String> docTable(String doc) {
    List<String> lines = doc.lines().toList();
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).startsWith("```")
          && i + 1 < lines.size()
          && lines.get(i + 1).startsWith("model: ")) {
        List<String> block = new ArrayList<>();
        for (int j = i + 1; j < lines.size() && !lines.get(j).startsWith("```"); j++) {
          block.add(lines.get(j));
        }
        return block;
      }
    }
    throw new AssertionError("no ``` block starting with 'model: '");
  }

  /** The parts that must match: the weights' hash instead of the path, no run time. */
  public static List<String> comparable(List<String> table) {
    List<String> out = new ArrayList<>();
    for (String line : table) {
      Matcher m = MODEL.matcher(line);
      if (m.matches()) {
        out.add("weights: " + m.group(1));
      } else {
        out.add(SECONDS.matcher(line.stripTrailing()).replaceAll(""));
      }
    }
    return out;
  }

  static final Pattern DECIMAL = Pattern.compile("[+-]?\\d+\\.(\\d+)");

  /**
   * Whether two printed lines say the same thing: the same fields, decimals allowed to differ by
   * one unit in their last printed digit (and printed with the same number of digits).
   */
  public static boolean sameLine(String doc, String now) {
    return sameLine(doc, now, 0);
  }

  /**
   * {@link #sameLine(String, String)} with more slack for decimals: they may also differ by {@code
   * relative} of the document's value. For tables of trained or clustered artefacts (k-means,
   * routers trained with AdamW), where a CPU's float kernels can tip an assignment and move a
   * figure by more than rounding.
   */
  public static boolean sameLine(String doc, String now, double relative) {
    if (doc.equals(now)) {
      return true;
    }
    String[] a = doc.trim().split("\\s+");
    String[] b = now.trim().split("\\s+");
    if (a.length != b.length) {
      return false;
    }
    for (int i = 0; i < a.length; i++) {
      if (a[i].equals(b[i])) {
        continue;
      }
      Matcher ma = DECIMAL.matcher(a[i]);
      Matcher mb = DECIMAL.matcher(b[i]);
      if (!ma.matches() || !mb.matches() || ma.group(1).length() != mb.group(1).length()) {
        return false;
      }
      long x = Long.parseLong(a[i].replace(".", "").replace("+", ""));
      long y = Long.parseLong(b[i].replace(".", "").replace("+", ""));
      if (Math.abs(x - y) > Math.max(1, relative * Math.abs(x))) {
        return false;
      }
    }
    return true;
  }

  /**
   * Fails unless the command's printed table {@code now} says what the document's table {@code doc}
   * says, line for line, with {@link #sameLine(String, String, double)}'s slack; the first line
   * (the weights' hash) must match exactly.
   *
   * @param command the command line the document says made it, for the failure message
   * @param printed the whole output, shown on failure
   */
  public static void assertSameTable(
      Path docPath,
      List<String> doc,
      List<String> now,
      double relative,
      String command,
      String printed) {
    if (!doc.isEmpty() && !now.isEmpty() && !doc.get(0).equals(now.get(0))) {
      fail(
          docPath
              + " was made on other weights ("
              + doc.get(0)
              + ") than the model now ("
              + now.get(0)
              + "): run "
              + command
              + " and paste its output into the document");
    }
    for (int i = 0; i < Math.max(doc.size(), now.size()); i++) {
      String d = i < doc.size() ? doc.get(i) : "<missing>";
      String n = i < now.size() ? now.get(i) : "<missing>";
      assertTrue(
          sameLine(d, n, relative),
          "line "
              + (i + 1)
              + " of the table in "
              + docPath
              + " differs from "
              + command
              + ":\n"
              + d
              + "\n"
              + n
              + "\npaste the new output if the change is intended. Whole output:\n"
              + printed);
    }
  }

  @Test
  void theDocumentedTableIsWhatTheCommandPrints() throws IOException {
    List<String> doc = comparable(docTable(Files.readString(DOC, StandardCharsets.UTF_8)));
    Assumptions.assumeTrue(
        Files.isRegularFile(MODEL_DIR.resolve("model.safetensors")),
        "the shipped tiny model is not in this checkout at " + MODEL_DIR);
    CliRun r = CliRun.of("quality-table", "--model", MODEL_DIR.toString());
    assertEquals(0, r.code(), r.err());
    List<String> now = comparable(r.out().lines().toList());
    assertTrue(now.get(0).startsWith("weights: "), r.out());
    assertSameTable(DOC, doc, now, 0, "./compactor quality-table", r.out());
  }

  @Test
  void comparisonIgnoresOnlyThePathAndTheRunTime() {
    List<String> a =
        comparable(
            List.of("model: /a/tiny (model.safetensors sha256 ab12)", "x 1.0", "bytes: ... 56 s."));
    List<String> b =
        comparable(
            List.of(
                "model: /b/c/tiny (model.safetensors sha256 ab12)", "x 1.0", "bytes: ... 7 s."));
    assertEquals(a, b);
    assertTrue(
        !comparable(List.of("x 1.0001")).equals(comparable(List.of("x 1.0002"))),
        "numbers are compared, not ignored");
  }

  @Test
  void oneUnitInTheLastDigitIsTheOnlySlack() {
    String doc = "AWQ int4 g128   3.7638   +0.547   0.005180   96.45      778,496   4.156";
    assertTrue(sameLine(doc, doc.replace("96.45", "96.46")));
    assertTrue(sameLine(doc, doc.replace("+0.547", "+0.546")));
    assertTrue(!sameLine(doc, doc.replace("96.45", "96.47")), "two units is a change");
    assertTrue(!sameLine(doc, doc.replace("96.45", "96.4")), "digits printed must match");
    assertTrue(!sameLine(doc, doc.replace("778,496", "778,497")), "byte counts are exact");
    assertTrue(!sameLine(doc, doc.replace("AWQ", "GPTQ")), "labels are exact");
    assertTrue(!sameLine(doc, doc + " extra"), "field count is exact");
    assertTrue(sameLine("x -0.001", "x +0.000"), "sign flips near zero are one unit");
    assertTrue(sameLine("x 17.1828", "x 17.4828", 0.02), "1.7 % of 17.18 is within 2 %");
    assertTrue(!sameLine("x 17.1828", "x 17.6828", 0.02), "2.9 % is not");
    assertTrue(!sameLine("x 204,800", "x 204,801", 0.02), "integers stay exact");
  }
}
