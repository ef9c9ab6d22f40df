package dev.compactor.core.tasks;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Task documents from JSONL, one JSON object a line: {@code {"context": ..., "choices": [...],
 * "gold": i}} (multiple choice, optional {@code "target_delimiter"}, default {@code " "}) or {@code
 * {"context": ..., "continuation": ...}}; an optional {@code "id"}. Blank lines are skipped. Every
 * problem is reported with its line number, and nothing of a bad file is used.
 */
public final class TaskFile {

  /** Longest line read, in characters: a larger one is refused rather than buffered. */
  static final int MAX_LINE = 1 << 20;

  static final int MAX_CHOICES = 100;

  private static final ObjectMapper JSON = new ObjectMapper();

  private TaskFile() {}

  public static List<TaskDoc> read(Path file) throws IOException {
    List<TaskDoc> docs = new ArrayList<>();
    try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      int lineNo = 0;
      StringBuilder line = new StringBuilder();
      while (readLine(r, line, file, lineNo + 1)) {
        lineNo++;
        if (!line.toString().isBlank()) {
          docs.add(parse(line.toString(), file + ":" + lineNo, Integer.toString(lineNo)));
        }
      }
    }
    if (docs.isEmpty()) {
      throw new IOException(file + ": no task documents");
    }
    return docs;
  }

  /** Reads one line into {@code out}, refusing one longer than {@link #MAX_LINE}. */
  private static boolean readLine(BufferedReader r, StringBuilder out, Path file, int lineNo)
      throws IOException {
    out.setLength(0);
    int c;
    boolean any = false;
    while ((c = r.read()) != -1) {
      any = true;
      if (c == '\n') {
        return true;
      }
      if (out.length() >= MAX_LINE) {
        throw new IOException(
            file + ":" + lineNo + ": line longer than " + MAX_LINE + " characters");
      }
      out.append((char) c);
    }
    return any;
  }

  static TaskDoc parse(String line, String where, String defaultId) throws IOException {
    JsonNode n;
    try {
      n = JSON.readTree(line);
    } catch (JsonProcessingException e) {
      throw new IOException(where + ": not JSON: " + e.getOriginalMessage());
    }
    if (n == null || !n.isObject()) {
      throw new IOException(where + ": expected a JSON object");
    }
    String id = n.has("id") ? n.get("id").asText() : defaultId;
    JsonNode context = n.get("context");
    if (context == null || !context.isTextual()) {
      throw new IOException(where + ": \"context\" must be a string");
    }
    boolean mc = n.has("choices");
    boolean cont = n.has("continuation");
    if (mc == cont) {
      throw new IOException(
          where
              + ": give either \"choices\" with \"gold\" or \"continuation\", not both or neither");
    }
    try {
      if (cont) {
        JsonNode c = n.get("continuation");
        if (!c.isTextual()) {
          throw new IOException(where + ": \"continuation\" must be a string");
        }
        return new TaskDoc.Continuation(id, context.asText(), c.asText());
      }
      JsonNode choices = n.get("choices");
      if (!choices.isArray() || choices.size() > MAX_CHOICES) {
        throw new IOException(
            where + ": \"choices\" must be an array of at most " + MAX_CHOICES + " strings");
      }
      List<String> list = new ArrayList<>();
      for (JsonNode c : choices) {
        if (!c.isTextual()) {
          throw new IOException(where + ": every choice must be a string");
        }
        list.add(c.asText());
      }
      JsonNode gold = n.get("gold");
      if (gold == null || !gold.isInt()) {
        throw new IOException(where + ": \"gold\" must be the index of the right choice");
      }
      JsonNode delimiter = n.get("target_delimiter");
      if (delimiter != null && !delimiter.isTextual()) {
        throw new IOException(where + ": \"target_delimiter\" must be a string");
      }
      return new TaskDoc.MultipleChoice(
          id, context.asText(), list, gold.asInt(), delimiter == null ? " " : delimiter.asText());
    } catch (IllegalArgumentException e) {
      throw new IOException(where + ": " + e.getMessage());
    }
  }

  /** One JSONL line for {@code doc}, as {@link #read} reads it back. */
  public static String line(TaskDoc doc) {
    var o = JSON.createObjectNode().put("id", doc.id()).put("context", doc.context());
    if (doc instanceof TaskDoc.MultipleChoice mc) {
      var a = o.putArray("choices");
      mc.choices().forEach(a::add);
      o.put("gold", mc.gold());
      if (!mc.delimiter().equals(" ")) {
        o.put("target_delimiter", mc.delimiter());
      }
    } else {
      o.put("continuation", ((TaskDoc.Continuation) doc).continuation());
    }
    return o.toString();
  }
}
