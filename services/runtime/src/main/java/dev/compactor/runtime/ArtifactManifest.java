package dev.compactor.runtime;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code manifest.json} stored with every artifact: each file's relative path, size and
 * SHA-256, the artifact's format, and its provenance (producing stage, recipe, parent artifact,
 * metrics). The manifest is written canonically (files sorted by path, keys sorted, no timestamps),
 * so the SHA-256 of its bytes identifies the artifact's content and history: the same files from
 * the same parent and recipe get the same address.
 *
 * @param format layout of the artifact, e.g. {@code hf-safetensors}
 * @param files one entry per file, sorted by path
 * @param provenance where the artifact came from
 */
public record ArtifactManifest(String format, List<FileEntry> files, Provenance provenance) {
  /** Version of this manifest layout; readers refuse versions they do not know. */
  public static final int FORMAT_VERSION = 1;

  /** Name of the manifest object inside an artifact prefix. */
  public static final String FILE_NAME = "manifest.json";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** One file of the artifact. */
  public record FileEntry(String path, long size, String sha256) {}

  /**
   * Where an artifact came from.
   *
   * @param stage the stage that produced it
   * @param recipe the recipe (YAML) it was produced under, or empty
   * @param parentSha256 the input artifact's manifest SHA-256, or null for a root (ingested) model
   * @param metrics the producing stage's measurements
   */
  public record Provenance(
      String stage, String recipe, String parentSha256, Map<String, Double> metrics) {
    public Provenance {
      if (stage == null || stage.isBlank()) {
        throw new IllegalArgumentException("provenance: expected a stage name, found none");
      }
      recipe = recipe == null ? "" : recipe;
      metrics = new TreeMap<>(metrics);
    }
  }

  /** Sorts the files; rejects unsafe paths, duplicate paths and malformed hashes. */
  public ArtifactManifest {
    List<FileEntry> sorted = new ArrayList<>(files);
    sorted.sort(Comparator.comparing(FileEntry::path));
    for (int i = 0; i < sorted.size(); i++) {
      FileEntry f = sorted.get(i);
      checkPath(f.path());
      if (!Sha256.isHex(f.sha256()) || f.size() < 0) {
        throw new IllegalArgumentException(
            "manifest entry " + f.path() + ": expected size >= 0 and 64 hex sha256, found " + f);
      }
      if (i > 0 && sorted.get(i - 1).path().equals(f.path())) {
        throw new IllegalArgumentException("manifest lists " + f.path() + " twice");
      }
    }
    files = List.copyOf(sorted);
  }

  /** Sum of all file sizes. */
  public long totalBytes() {
    return files.stream().mapToLong(FileEntry::size).sum();
  }

  /** The canonical bytes whose SHA-256 is the artifact's address. */
  public byte[] toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("formatVersion", FORMAT_VERSION);
    root.put("format", format);
    ArrayNode fs = root.putArray("files");
    for (FileEntry f : files) {
      fs.addObject().put("path", f.path()).put("size", f.size()).put("sha256", f.sha256());
    }
    ObjectNode p = root.putObject("provenance");
    p.put("stage", provenance.stage());
    p.put("recipe", provenance.recipe());
    if (provenance.parentSha256() == null) {
      p.putNull("parentSha256");
    } else {
      p.put("parentSha256", provenance.parentSha256());
    }
    ObjectNode m = p.putObject("metrics");
    provenance.metrics().forEach(m::put);
    try {
      return JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a tree of strings and numbers always serializes", e);
    }
  }

  /**
   * Parses manifest bytes.
   *
   * @throws IllegalArgumentException saying which field was missing or wrong
   */
  public static ArtifactManifest parse(byte[] json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException("manifest.json: expected JSON, found: " + e.getMessage());
    }
    int version = required(root, "formatVersion").asInt(-1);
    if (version != FORMAT_VERSION) {
      throw new IllegalArgumentException(
          "manifest.json: expected formatVersion " + FORMAT_VERSION + ", found " + version);
    }
    List<FileEntry> files = new ArrayList<>();
    for (JsonNode f : required(root, "files")) {
      files.add(
          new FileEntry(
              required(f, "path").asText(),
              required(f, "size").asLong(-1),
              required(f, "sha256").asText()));
    }
    JsonNode p = required(root, "provenance");
    Map<String, Double> metrics = new TreeMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = required(p, "metrics").fields();
        it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      metrics.put(e.getKey(), e.getValue().asDouble());
    }
    JsonNode parent = p.get("parentSha256");
    return new ArtifactManifest(
        required(root, "format").asText(),
        files,
        new Provenance(
            required(p, "stage").asText(),
            required(p, "recipe").asText(),
            parent == null || parent.isNull() ? null : parent.asText(),
            metrics));
  }

  private static JsonNode required(JsonNode node, String field) {
    JsonNode v = node.get(field);
    if (v == null) {
      throw new IllegalArgumentException(
          "manifest.json: expected field '" + field + "', found none");
    }
    return v;
  }

  /** Rejects paths that could escape the artifact directory or clash with the manifest. */
  static void checkPath(String path) {
    if (path == null
        || path.isEmpty()
        || path.startsWith("/")
        || path.contains("\\")
        || path.equals(FILE_NAME)) {
      throw new IllegalArgumentException(
          "artifact file path: expected a relative path other than "
              + FILE_NAME
              + ", found '"
              + path
              + "'");
    }
    for (String seg : path.split("/", -1)) {
      if (seg.isEmpty() || seg.equals(".") || seg.equals("..")) {
        throw new IllegalArgumentException(
            "artifact file path: expected no empty, '.' or '..' segments, found '" + path + "'");
      }
    }
  }
}
