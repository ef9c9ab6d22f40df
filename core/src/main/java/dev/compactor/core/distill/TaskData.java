package dev.compactor.core.distill;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.tokenizer.ChatTemplate;
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
 * A line may instead be a chat, {@code {"messages": [{"role": ..., "content": ...}, ...]}},
 * rendered with the model's chat template ({@link ChatTemplate}: the recognised ChatML and Llama-3
 * templates) and tokenized as rendered (no BOS added beyond the template's own); the loss counts
 * the assistant turns only (their content and end-of-turn token). A model without a chat template
 * refuses {@code messages} lines.
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
  public record Example(int line, int[] tokens, int promptLength, boolean[] targets) {

    /** A prompt-completion example: every token after the prompt is a target. */
    public Example(int line, int[] tokens, int promptLength) {
      this(line, tokens, promptLength, after(tokens.length, promptLength));
    }

    private static boolean[] after(int n, int from) {
      boolean[] t = new boolean[n];
      Arrays.fill(t, Math.min(from, n), n, true);
      return t;
    }
  }

  /**
   * Fixed-length windows for {@link Distiller#distill(dev.compactor.core.model.CausalLM, Trainable,
   * List, List)}: each holds {@code seq + 1} ids (an example padded at the end), and its mask is
   * true at the targets that are completion tokens.
   */
  public record Windows(List<int[]> windows, List<boolean[]> targetMasks, long completionTokens) {}

  /** Reads and tokenizes every non-blank line of {@code file}. */
  public static List<Example> read(Path file, TextTokenizer tokenizer) throws IOException {
    return read(file, tokenizer, null);
  }

  /**
   * Reads and tokenizes every non-blank line of {@code file}, rendering {@code messages} lines with
   * {@code template} (null: the model has none, and such lines are refused).
   */
  public static List<Example> read(Path file, TextTokenizer tokenizer, ChatTemplate template)
      throws IOException {
    List<Example> out = new ArrayList<>();
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
      int lineNo = 0;
      for (byte[] raw; (raw = nextLine(in, file, lineNo + 1)) != null; ) {
        lineNo++;
        String line = decode(raw, file, lineNo).strip();
        if (line.isEmpty()) {
          continue;
        }
        out.add(example(line, tokenizer, template, file, lineNo));
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
      for (int p = 0; p < t.length - 1; p++) {
        if (e.targets()[p + 1]) {
          mask[p] = true;
          completion++;
        }
      }
      windows.add(w);
      masks.add(mask);
    }
    return new Windows(windows, masks, completion);
  }

  private static Example example(
      String line, TextTokenizer tokenizer, ChatTemplate template, Path file, int lineNo) {
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
      return chat(node.get("messages"), tokenizer, template, file, lineNo);
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

  private static Example chat(
      JsonNode messages, TextTokenizer tokenizer, ChatTemplate template, Path file, int lineNo) {
    if (template == null) {
      throw problem(
          file,
          lineNo,
          "\"messages\" needs the model's chat template, and its tokenizer_config.json has no"
              + " chat_template; give {\"prompt\", \"completion\"} lines");
    }
    if (!messages.isArray() || messages.isEmpty()) {
      throw problem(
          file, lineNo, "\"messages\" must be a non-empty array, found " + kind(messages));
    }
    List<ChatTemplate.Message> list = new ArrayList<>();
    boolean assistant = false;
    for (JsonNode m : messages) {
      if (!m.isObject()) {
        throw problem(file, lineNo, "every message must be an object, found " + kind(m));
      }
      String role = text(m, "role", file, lineNo);
      String content = text(m, "content", file, lineNo);
      assistant |= role.equals("assistant") && !content.isEmpty();
      list.add(new ChatTemplate.Message(role, content));
    }
    if (!assistant) {
      throw problem(file, lineNo, "no non-empty \"assistant\" message: nothing to learn");
    }
    List<ChatTemplate.Piece> pieces = template.render(list);
    StringBuilder whole = new StringBuilder();
    List<int[]> parts = new ArrayList<>();
    int n = 0;
    for (ChatTemplate.Piece p : pieces) {
      whole.append(p.text());
      int[] ids = tokenizer.encode(p.text());
      parts.add(ids);
      n += ids.length;
    }
    int[] all = tokenizer.encode(whole.toString());
    int[] joined = new int[n];
    boolean[] targets = new boolean[n];
    int at = 0;
    int first = -1;
    for (int i = 0; i < parts.size(); i++) {
      int[] ids = parts.get(i);
      System.arraycopy(ids, 0, joined, at, ids.length);
      if (pieces.get(i).assistant()) {
        Arrays.fill(targets, at, at + ids.length, true);
        first = first < 0 ? at : first;
      }
      at += ids.length;
    }
    // the mask is exact only when no token spans a turn boundary
    if (!Arrays.equals(all, joined)) {
      throw problem(
          file,
          lineNo,
          "the rendered chat ("
              + template.name()
              + ") does not tokenize at its turn boundaries (a token spans two turns), so the"
              + " assistant turns cannot be masked exactly");
    }
    if (first == 0) {
      throw problem(
          file, lineNo, "the chat starts with an assistant turn: nothing to condition on");
    }
    return new Example(lineNo, all, first, targets);
  }

  private static String text(JsonNode node, String field, Path file, int lineNo) {
    JsonNode v = node.get(field);
    if (v == null) {
      String expected =
          field.equals("prompt") || field.equals("completion")
              ? " (expected prompt and completion)"
              : "";
      throw problem(file, lineNo, "missing \"" + field + "\"" + expected);
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
