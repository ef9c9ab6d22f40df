package dev.compactor.core.data.clean;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Reads the documents of a file and writes the kept ones back in the same layout. A {@code .jsonl}
 * file holds one JSON object a line with {@code text}, or {@code prompt} and {@code completion}
 * (the layout distillation's {@link dev.compactor.core.distill.TaskData} reads); kept lines are
 * written byte for byte as read. Any other file is UTF-8 text whose documents are blank-line
 * separated paragraphs, or lines when it has no blank line — the split {@link
 * dev.compactor.core.data.Corpus#fromTextFile} makes, so a cleaned file reads back as the same
 * documents.
 */
public final class DocumentFile {

  /** How a file is cut into documents. */
  public enum Layout {
    /** Blank-line separated paragraphs. */
    PARAGRAPHS,
    /** One document a line. */
    LINES,
    /** One JSON record a line. */
    JSONL
  }

  /** The documents of a file and how it was cut. */
  public record Contents(Layout layout, List<Document> documents) {}

  private static final Pattern BLANK_LINE = Pattern.compile("\\R\\s*\\R");
  private static final ObjectMapper JSON = new ObjectMapper();

  private DocumentFile() {}

  /** Reads {@code file}: JSONL when its name ends in {@code .jsonl}, text otherwise. */
  public static Contents read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException("expected a file at " + file + " but found none");
    }
    String text = Files.readString(file, StandardCharsets.UTF_8);
    if (file.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".jsonl")) {
      return new Contents(Layout.JSONL, jsonl(text, file.toString()));
    }
    return parseText(text);
  }

  /** Cuts UTF-8 text into paragraphs, or lines when it has no blank line. */
  public static Contents parseText(String text) {
    boolean paragraphs = BLANK_LINE.matcher(text).find();
    String[] parts = paragraphs ? BLANK_LINE.split(text) : text.split("\\R");
    List<Document> docs = new ArrayList<>();
    for (String p : parts) {
      if (!p.isBlank()) {
        docs.add(Document.of(docs.size(), p.strip()));
      }
    }
    return new Contents(paragraphs ? Layout.PARAGRAPHS : Layout.LINES, docs);
  }

  /** Writes {@code kept} to {@code file} in {@code layout}. */
  public static void write(Path file, Layout layout, List<Document> kept) throws IOException {
    String sep = layout == Layout.PARAGRAPHS ? "\n\n" : "\n";
    StringBuilder out = new StringBuilder();
    for (Document d : kept) {
      out.append(d.original()).append(sep);
    }
    Files.writeString(file, out.toString(), StandardCharsets.UTF_8);
  }

  static List<Document> jsonl(String text, String name) {
    List<Document> docs = new ArrayList<>();
    String[] lines = text.split("\\R");
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty()) {
        continue;
      }
      JsonNode node;
      try {
        node = JSON.readTree(line);
      } catch (JsonProcessingException e) {
        throw problem(name, i + 1, "not JSON (" + e.getOriginalMessage() + ")");
      }
      if (node == null || !node.isObject()) {
        throw problem(name, i + 1, "expected a JSON object");
      }
      String body;
      if (node.hasNonNull("text")) {
        body = string(node, "text", name, i + 1);
      } else if (node.has("prompt") || node.has("completion")) {
        body = string(node, "prompt", name, i + 1) + "\n" + string(node, "completion", name, i + 1);
      } else if (node.has("messages")) {
        throw new UnsupportedOperationException(
            name + ":" + (i + 1) + ": not supported yet: chat \"messages\" records");
      } else {
        throw problem(name, i + 1, "expected \"text\" or \"prompt\" and \"completion\"");
      }
      docs.add(new Document(docs.size(), body, line));
    }
    return docs;
  }

  private static String string(JsonNode node, String field, String name, int line) {
    JsonNode v = node.get(field);
    if (v == null || !v.isTextual()) {
      throw problem(name, line, "\"" + field + "\" must be a string");
    }
    return v.asText();
  }

  private static IllegalArgumentException problem(String name, int line, String what) {
    return new IllegalArgumentException(name + ":" + line + ": " + what);
  }
}
