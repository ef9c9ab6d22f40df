package dev.compactor.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.distill.TaskData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The recognised chat templates against renderings written out by hand from the templates' Jinja
 * (as Hugging Face's {@code apply_chat_template} prints them), and the assistant-only loss mask.
 */
class ChatTemplateTest {

  /** The templates as the models' tokenizer_config.json files spell them (JSON-decoded). */
  static final String QWEN2_AS_SHIPPED =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          + "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
          + "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
          + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

  static final String LLAMA3_AS_SHIPPED =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content ="
          + " '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+"
          + " message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content"
          + " = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if"
          + " add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%"
          + " endif %}";

  static final String CHATML_WITH_TRIM_MARKERS =
      "{%- for message in messages -%}\n  {{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" +"
          + " message[\"content\"] + \"<|im_end|>\" + \"\\n\" -}}\n{%- endfor -%}\n{%- if"
          + " add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";

  private static final List<ChatTemplate.Message> CHAT =
      List.of(
          new ChatTemplate.Message("user", "Hi"),
          new ChatTemplate.Message("assistant", " Hello! "),
          new ChatTemplate.Message("user", "Bye"),
          new ChatTemplate.Message("assistant", "Bye."));

  @Test
  void rendersTheRecognisedTemplatesAsTheirJinjaDoes() {
    ChatTemplate qwen = ChatTemplate.of(QWEN2_AS_SHIPPED, null);
    assertEquals("qwen2", qwen.name());
    assertEquals(
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n"
            + "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n",
        text(qwen.render(CHAT)));
    List<ChatTemplate.Message> withSystem = new ArrayList<>(CHAT);
    withSystem.add(0, new ChatTemplate.Message("system", "Be brief."));
    assertTrue(
        text(qwen.render(withSystem))
            .startsWith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user"));

    ChatTemplate chatml = ChatTemplate.of(ChatTemplate.CHATML, null);
    assertEquals("chatml", chatml.name());
    assertEquals(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n"
            + "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nBye.<|im_end|>\n",
        text(chatml.render(CHAT)));
    assertEquals("chatml", ChatTemplate.of(CHATML_WITH_TRIM_MARKERS, null).name());

    ChatTemplate llama = ChatTemplate.of(LLAMA3_AS_SHIPPED, "<|begin_of_text|>");
    assertEquals("llama3", llama.name());
    // | trim strips the content; BOS before the first message only
    assertEquals(
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nBye.<|eot_id|>",
        text(llama.render(CHAT)));
    // the assistant pieces: content and end of turn, not the header
    List<String> assistant =
        llama.render(CHAT).stream()
            .filter(ChatTemplate.Piece::assistant)
            .map(ChatTemplate.Piece::text)
            .toList();
    assertEquals(List.of("Hello!<|eot_id|>", "Bye.<|eot_id|>"), assistant);
  }

  @Test
  void refusesTemplatesItDoesNotKnow() {
    String llama2 =
        "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' +"
            + " message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '"
            + " + message['content'] + eos_token }}{% endif %}{% endfor %}";
    UnsupportedOperationException e =
        assertThrows(UnsupportedOperationException.class, () -> ChatTemplate.of(llama2, "<s>"));
    assertTrue(e.getMessage().startsWith("not supported yet: chat template"), e.getMessage());
    // one character of a literal changed is another template
    assertThrows(
        UnsupportedOperationException.class,
        () -> ChatTemplate.of(QWEN2_AS_SHIPPED.replace("helpful", "useful"), null));
    assertThrows(IllegalArgumentException.class, () -> ChatTemplate.of(LLAMA3_AS_SHIPPED, null));
  }

  @Test
  void taskDataMasksTheAssistantTurnsOnly(@TempDir Path tmp) throws Exception {
    Path model = tmp.resolve("m");
    Files.createDirectories(model);
    ObjectMapper json = new ObjectMapper();
    json.writeValue(
        model.resolve("tokenizer_config.json").toFile(),
        Map.of("bos_token", "<|begin_of_text|>", "chat_template", LLAMA3_AS_SHIPPED));
    ChatTemplate template = ChatTemplate.forModel(model).orElseThrow();
    assertEquals("llama3", template.name());
    assertTrue(ChatTemplate.forModel(tmp).isEmpty());

    Path f = tmp.resolve("chat.jsonl");
    Files.writeString(
        f,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"},"
            + "{\"role\":\"assistant\",\"content\":\"c\"},"
            + "{\"role\":\"user\",\"content\":\"d\"},"
            + "{\"role\":\"assistant\",\"content\":\"ef\"}]}\n");
    SpecialBytes tok = new SpecialBytes();
    List<TaskData.Example> ex = TaskData.read(f, tok, template);
    int[] tokens = ex.get(0).tokens();
    assertArrayEquals(
        tok.encode(
            text(
                template.render(
                    List.of(
                        new ChatTemplate.Message("user", "ab"),
                        new ChatTemplate.Message("assistant", "c"),
                        new ChatTemplate.Message("user", "d"),
                        new ChatTemplate.Message("assistant", "ef"))))),
        tokens);
    StringBuilder targets = new StringBuilder();
    for (int i = 0; i < tokens.length; i++) {
      if (ex.get(0).targets()[i]) {
        targets.append(tok.decode(new int[] {tokens[i]}, false));
      }
    }
    assertEquals("c<|eot_id|>ef<|eot_id|>", targets.toString());
    TaskData.Windows w = TaskData.windows(ex, tokens.length - 1, 0);
    assertEquals(5, w.completionTokens());
    boolean[] mask = w.targetMasks().get(0);
    for (int p = 0; p < mask.length; p++) {
      assertEquals(ex.get(0).targets()[p + 1], mask[p], "position " + p);
    }
    assertFalse(mask[0]);

    Path noAssistant = tmp.resolve("na.jsonl");
    Files.writeString(noAssistant, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}]}\n");
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> TaskData.read(noAssistant, tok, template));
    assertTrue(e.getMessage().contains(":1: no non-empty \"assistant\" message"), e.getMessage());
    Path badRole = tmp.resolve("br.jsonl");
    Files.writeString(badRole, "{\"messages\":[{\"content\":\"ab\"}]}\n");
    e = assertThrows(IllegalArgumentException.class, () -> TaskData.read(badRole, tok, template));
    assertTrue(e.getMessage().contains(":1: missing \"role\""), e.getMessage());
  }

  private static String text(List<ChatTemplate.Piece> pieces) {
    StringBuilder s = new StringBuilder();
    pieces.forEach(p -> s.append(p.text()));
    return s.toString();
  }

  /** UTF-8 bytes as ids 0–255, the chat templates' special tokens as 256 and up (one id each). */
  static final class SpecialBytes implements TextTokenizer {
    static final List<String> SPECIAL =
        List.of(
            "<|im_start|>",
            "<|im_end|>",
            "<|begin_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>");

    @Override
    public int[] encode(String text) {
      List<Integer> ids = new ArrayList<>();
      int i = 0;
      outer:
      while (i < text.length()) {
        for (int s = 0; s < SPECIAL.size(); s++) {
          if (text.startsWith(SPECIAL.get(s), i)) {
            ids.add(256 + s);
            i += SPECIAL.get(s).length();
            continue outer;
          }
        }
        int cp = text.codePointAt(i);
        for (byte b : new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8)) {
          ids.add(b & 0xff);
        }
        i += Character.charCount(cp);
      }
      return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @Override
    public String decode(int[] ids) {
      return decode(ids, true);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
      StringBuilder s = new StringBuilder();
      java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
      for (int id : ids) {
        if (id >= 256) {
          s.append(bytes.toString(StandardCharsets.UTF_8));
          bytes.reset();
          if (!skipSpecialTokens) {
            s.append(SPECIAL.get(id - 256));
          }
        } else {
          bytes.write(id);
        }
      }
      return s.append(bytes.toString(StandardCharsets.UTF_8)).toString();
    }

    @Override
    public int vocabSize() {
      return 256 + SPECIAL.size();
    }

    @Override
    public OptionalInt bosId() {
      return OptionalInt.empty();
    }

    @Override
    public OptionalInt eosId() {
      return OptionalInt.empty();
    }
  }
}
