package dev.compactor.core.distill;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Task data for distillation: a JSONL file of {@code {"prompt": ..., "completion": ...}} lines,
 * tokenized with the model's tokenizer as {@code encodeWithBos(prompt) + encode(completion) + [EOS
 * when the tokenizer has one]}, with the loss counted on the completion tokens (and the EOS) only.
 * Chat {@code messages} lines are refused: the project renders no chat templates.
 *
 * <p>Every problem names its line: bad JSON, a missing or non-string field, an empty completion, a
 * line over {@link #MAX_LINE_BYTES} (refused before it is read whole), invalid UTF-8, an example
 * longer than the window.
 */
public final class TaskData {

  /** The longest line accepted, in bytes. */
  public static final int MAX_LINE_BYTES = 1 << 20;

  private static final ObjectMapper JSON = new ObjectMapper();

  private TaskData() {}

  /**
   * One example: its token ids and how many of them are prompt (BOS included).
   *
   * @param line the 1-based line it came from
   */
  public record Example(int line, int[] tokens, int promptLength) {}

  /**
   * Fixed-length windows for {@link Distiller#distill(dev.compactor.core.model.CausalLM, Trainable,
   * List, List)}: each holds {@code seq + 1} ids (an example padded at the end), and its mask is
   * true at the targets that are completion tokens.
   */
  public record Windows(List<int[]> windows, List<boolean[]> targetMasks, long completionTokens) {}

  /** Reads and tokenizes every non-blank line of {@code file}. */
  public static List<Example> read(Path file, TextTokenizer tokenizer) throws IOException {
    List<Example> out = new ArrayList<>();
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
      int lineNo = 0;
      for (byte[] raw; (raw = nextLine(in, file, lineNo + 1)) != null; ) {
        lineNo++;
        String line = decode(raw, file, lineNo).strip();
        if (line.isEmpty()) {
          continue;
        }
        out.add(example(line, tokenizer, file, lineNo));
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(file + ": no examples (expected JSONL lines)");
    }
    return out;
  }

  /** The length every window must have for {@code examples}: the longest example. */
  public static int longest(List<Example> examples) {
    return examples.stream().mapToInt(e -> e.tokens().length).max().orElse(0);
  }

  /**
   * One window of {@code seq + 1} ids per example, padded at the end with {@code padId} (never a
   * target that counts).
   */
  public static Windows windows(List<Example> examples, int seq, int padId) {
    List<int[]> windows = new ArrayList<>();
    List<boolean[]> masks = new ArrayList<>();
    long completion = 0;
    for (Example e : examples) {
      int[] t = e.tokens();
      if (t.length > seq + 1) {
        throw new IllegalArgumentException(
            "line "
                + e.line()
                + ": the example is "
                + t.length
                + " tokens, longer than a window of "
                + (seq + 1));
      }
      int[] w = Arrays.copyOf(t, seq + 1);
      Arrays.fill(w, t.length, seq + 1, padId);
      boolean[] mask = new boolean[seq];
      // target at position p is token p + 1
      for (int p = Math.max(0, e.promptLength() - 1); p < t.length - 1; p++) {
        mask[p] = true;
        completion++;
      }
      windows.add(w);
      masks.add(mask);
    }
    return new Windows(windows, masks, completion);
  }

  private static Example example(String line, TextTokenizer tokenizer, Path file, int lineNo) {
    JsonNode node;
    try {
      node = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw problem(file, lineNo, "not JSON (" + e.getOriginalMessage() + ")");
    }
    if (node == null || !node.isObject()) {
      throw problem(file, lineNo, "expected a JSON object, found " + kind(node));
    }
    if (node.has("messages")) {
      throw new UnsupportedOperationException(
          file
              + ":"
              + lineNo
              + ": not supported yet: chat template rendering (\"messages\"); give"
              + " {\"prompt\", \"completion\"} lines");
    }
    String prompt = text(node, "prompt", file, lineNo);
    String completion = text(node, "completion", file, lineNo);
    if (completion.isEmpty()) {
      throw problem(file, lineNo, "\"completion\" is empty: nothing to learn");
    }
    int[] p = tokenizer.encodeWithBos(prompt);
    int[] c = tokenizer.encode(completion);
    int eos = tokenizer.eosId().isPresent() ? 1 : 0;
    int[] all = Arrays.copyOf(p, p.length + c.length + eos);
    System.arraycopy(c, 0, all, p.length, c.length);
    if (eos == 1) {
      all[all.length - 1] = tokenizer.eosId().getAsInt();
    }
    if (p.length == 0) {
      throw problem(file, lineNo, "the prompt is empty and the tokenizer has no BOS to start on");
    }
    return new Example(lineNo, all, p.length);
  }

  private static String text(JsonNode node, String field, Path file, int lineNo) {
    JsonNode v = node.get(field);
    if (v == null) {
      throw problem(file, lineNo, "missing \"" + field + "\" (expected prompt and completion)");
    }
    if (!v.isTextual()) {
      throw problem(file, lineNo, "\"" + field + "\" must be a string, found " + kind(v));
    }
    return v.asText();
  }

  private static String kind(JsonNode n) {
    return n == null ? "nothing" : n.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
  }

  /** The next line's bytes without its terminator, null at the end; refuses over-long lines. */
  private static byte[] nextLine(InputStream in, Path file, int lineNo) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    int b = in.read();
    if (b < 0) {
      return null;
    }
    while (b >= 0 && b != '\n') {
      if (line.size() >= MAX_LINE_BYTES) {
        throw problem(file, lineNo, "longer than " + MAX_LINE_BYTES + " bytes");
      }
      line.write(b);
      b = in.read();
    }
    return line.toByteArray();
  }

  private static String decode(byte[] raw, Path file, int lineNo) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(raw))
          .toString();
    } catch (CharacterCodingException e) {
      throw problem(file, lineNo, "not valid UTF-8");
    }
  }

  private static IllegalArgumentException problem(Path file, int lineNo, String what) {
    return new IllegalArgumentException(file + ":" + lineNo + ": " + what);
  }
}
