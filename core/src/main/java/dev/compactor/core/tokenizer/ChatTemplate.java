package dev.compactor.core.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A model's chat template, for the templates the project recognises. Hugging Face stores the
 * template as Jinja source ({@code chat_template} in tokenizer_config.json); the project runs no
 * Jinja, so the source is compared (after {@link #normalize}: whitespace and quotes inside tags,
 * {@code -} trim markers) with the known templates below and rendered by Java code that produces
 * the same text. Any other template is refused with "not supported yet: chat template …".
 *
 * <ul>
 *   <li>{@code chatml}: {@code <|im_start|>ROLE\nCONTENT<|im_end|>\n} per message (ChatML as in
 *       Qwen1.5 base models, OpenHermes, many fine-tunes);
 *   <li>{@code qwen2}: ChatML with Qwen2-Instruct's default system turn ({@code You are a helpful
 *       assistant.}) when the first message is not a system message;
 *   <li>{@code llama3}: Llama-3-Instruct's {@code BOS <|start_header_id|>ROLE<|end_header_id|>\n\n
 *       trim(CONTENT)<|eot_id|>} per message (BOS before the first).
 * </ul>
 *
 * <p>{@link #render} marks which parts of the text are an assistant's turn (its content and the
 * end-of-turn token, not the header or the newline after it): the parts a supervised loss counts.
 */
public final class ChatTemplate {

  /** One chat message. */
  public record Message(String role, String content) {}

  /** A piece of the rendered text; {@code assistant} when it belongs to an assistant's turn. */
  public record Piece(String text, boolean assistant) {}

  static final String CHATML =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' +"
          + " message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt"
          + " %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  static final String QWEN2 =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{"
          + " '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif"
          + " %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' +"
          + " '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%"
          + " endif %}";

  static final String LLAMA3 =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content ="
          + " '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+"
          + " message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content"
          + " = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if"
          + " add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n'"
          + " }}{% endif %}";

  private static final String QWEN2_SYSTEM = "You are a helpful assistant.";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final String name;
  private final String bosToken;

  private ChatTemplate(String name, String bosToken) {
    this.name = name;
    this.bosToken = bosToken;
  }

  /** The recognised template's name: {@code chatml}, {@code qwen2} or {@code llama3}. */
  public String name() {
    return name;
  }

  /**
   * The chat template of the model in {@code dir}, empty when its tokenizer_config.json has none
   * (or there is no tokenizer_config.json); refuses a template it does not recognise.
   */
  public static Optional<ChatTemplate> forModel(Path dir) throws IOException {
    Path file = dir.resolve("tokenizer_config.json");
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    JsonNode config = JSON.readTree(file.toFile());
    JsonNode t = config.get("chat_template");
    if (t == null || t.isNull()) {
      return Optional.empty();
    }
    if (!t.isTextual()) {
      throw new UnsupportedOperationException(
          "not supported yet: chat template of kind "
              + t.getNodeType().toString().toLowerCase(java.util.Locale.ROOT)
              + " in "
              + file
              + " (named templates); expected one Jinja string");
    }
    JsonNode bos = config.get("bos_token");
    String bosToken =
        bos == null || bos.isNull()
            ? null
            : bos.isTextual() ? bos.asText() : bos.path("content").asText(null);
    return Optional.of(of(t.asText(), bosToken));
  }

  /**
   * The template whose Jinja source is {@code source}.
   *
   * @param bosToken the tokenizer's BOS text ({@code bos_token}), needed by {@code llama3}
   */
  public static ChatTemplate of(String source, String bosToken) {
    String n = normalize(source);
    if (n.equals(normalize(CHATML))) {
      return new ChatTemplate("chatml", bosToken);
    }
    if (n.equals(normalize(QWEN2))) {
      return new ChatTemplate("qwen2", bosToken);
    }
    if (n.equals(normalize(LLAMA3))) {
      if (bosToken == null || bosToken.isEmpty()) {
        throw new IllegalArgumentException(
            "the Llama-3 chat template starts with bos_token, but the tokenizer config names none");
      }
      return new ChatTemplate("llama3", bosToken);
    }
    String head = source.length() > 80 ? source.substring(0, 80) + "…" : source;
    throw new UnsupportedOperationException(
        "not supported yet: chat template "
            + JSON.valueToTree(head)
            + " (recognised: ChatML, Qwen2-Instruct's ChatML, Llama-3-Instruct)");
  }

  /**
   * The conversation rendered as the template renders it with {@code add_generation_prompt =
   * false}, in pieces marked by whether they are an assistant's turn.
   */
  public List<Piece> render(List<Message> messages) {
    if (messages.isEmpty()) {
      throw new IllegalArgumentException("a conversation needs at least one message");
    }
    List<Piece> out = new ArrayList<>();
    switch (name) {
      case "chatml", "qwen2" -> {
        if (name.equals("qwen2") && !messages.get(0).role().equals("system")) {
          out.add(new Piece("<|im_start|>system\n" + QWEN2_SYSTEM + "<|im_end|>\n", false));
        }
        for (Message m : messages) {
          turn(out, "<|im_start|>" + m.role() + "\n", m, m.content(), "<|im_end|>", "\n");
        }
      }
      case "llama3" -> {
        for (int i = 0; i < messages.size(); i++) {
          Message m = messages.get(i);
          String header = "<|start_header_id|>" + m.role() + "<|end_header_id|>\n\n";
          turn(out, (i == 0 ? bosToken : "") + header, m, m.content().strip(), "<|eot_id|>", "");
        }
      }
      default -> throw new IllegalStateException(name);
    }
    return out;
  }

  private static void turn(
      List<Piece> out, String header, Message m, String content, String end, String after) {
    boolean assistant = m.role().equals("assistant");
    out.add(new Piece(header, false));
    out.add(new Piece(content + end, assistant));
    if (!after.isEmpty()) {
      out.add(new Piece(after, false));
    }
  }

  /**
   * Jinja source in a canonical form: inside {@code {{ }}} and {@code {% %}} tags whitespace
   * outside string literals is dropped, literals are written with single quotes and their {@code
   * \n} escapes resolved, and {@code -} trim markers are dropped together with the whitespace they
   * would trim; text between tags is kept as it is (Jinja prints it).
   */
  static String normalize(String source) {
    StringBuilder out = new StringBuilder();
    int i = 0;
    boolean trimNext = false;
    while (i < source.length()) {
      int open = nextTag(source, i);
      String text = source.substring(i, open < 0 ? source.length() : open);
      if (trimNext) {
        text = text.stripLeading();
      }
      if (open < 0) {
        out.append(text);
        break;
      }
      boolean trimBefore = open + 2 < source.length() && source.charAt(open + 2) == '-';
      if (trimBefore) {
        text = text.stripTrailing();
      }
      out.append(text);
      char kind = source.charAt(open + 1);
      String close = kind == '{' ? "}}" : "%}";
      int end = closeOf(source, open + 2, close);
      if (end < 0) {
        throw new UnsupportedOperationException(
            "not supported yet: chat template with an unclosed tag at character " + open);
      }
      String body = source.substring(open + (trimBefore ? 3 : 2), end);
      trimNext = body.endsWith("-");
      if (trimNext) {
        body = body.substring(0, body.length() - 1);
      }
      out.append(source, open, open + 2).append(tagBody(body)).append(close);
      i = end + 2;
    }
    return out.toString();
  }

  private static int nextTag(String s, int from) {
    for (int i = from; i + 1 < s.length(); i++) {
      if (s.charAt(i) == '{' && (s.charAt(i + 1) == '{' || s.charAt(i + 1) == '%')) {
        return i;
      }
    }
    return -1;
  }

  /** Where {@code close} ends the tag, skipping string literals. */
  private static int closeOf(String s, int from, String close) {
    char quote = 0;
    for (int i = from; i < s.length(); i++) {
      char c = s.charAt(i);
      if (quote != 0) {
        if (c == '\\') {
          i++;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (s.startsWith(close, i)) {
        return i;
      }
    }
    return -1;
  }

  private static String tagBody(String body) {
    StringBuilder out = new StringBuilder();
    char quote = 0;
    for (int i = 0; i < body.length(); i++) {
      char c = body.charAt(i);
      if (quote != 0) {
        if (c == '\\' && i + 1 < body.length()) {
          char e = body.charAt(++i);
          out.append(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else if (c == quote) {
          out.append('\'');
          quote = 0;
        } else {
          out.append(c);
        }
      } else if (c == '\'' || c == '"') {
        out.append('\'');
        quote = c;
      } else if (!Character.isWhitespace(c)) {
        out.append(c);
      }
    }
    return out.toString();
  }
}
