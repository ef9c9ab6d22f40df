package dev.compactor.core.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face style model directory ({@code config.json}, safetensors weights, tokenizer files),
 * checked on open so a bad submission fails at ingestion with a clear reason rather than hours into
 * a job.
 *
 * <p>On {@link #open} the config must be a JSON object, the weights must be safetensors (single or
 * sharded) and valid, and no file we use may be a link leading outside the directory. A directory
 * with only pickle weights ({@code *.bin}, {@code *.pt}, {@code *.pth}, {@code *.pkl}, {@code
 * *.ckpt}) is refused with an explanation, because unpickling runs arbitrary code; when safetensors
 * are also present the pickle files are ignored (never opened) with a warning.
 */
public final class ModelDirectory {

  private static final Logger LOG = LoggerFactory.getLogger(ModelDirectory.class);

  /** The non-weight files a model needs next to its weights, copied verbatim to outputs. */
  public static final List<String> AUXILIARY_FILE_NAMES =
      List.of(
          "tokenizer.json",
          "tokenizer_config.json",
          "special_tokens_map.json",
          "generation_config.json",
          "chat_template.jinja",
          "chat_template.json",
          "added_tokens.json",
          "vocab.json",
          "merges.txt",
          "tokenizer.model");

  public static final String CONFIG = "config.json";

  private final Path dir;
  private final JsonNode config;
  private final List<Path> weightFiles;
  private final List<Path> auxiliaryFiles;
  private final long totalWeightBytes;
  private final long parameterCount;
  private final DType dominantDType;

  private ModelDirectory(
      Path dir,
      JsonNode config,
      List<Path> weightFiles,
      List<Path> auxiliaryFiles,
      long totalWeightBytes,
      long parameterCount,
      DType dominantDType) {
    this.dir = dir;
    this.config = config;
    this.weightFiles = List.copyOf(weightFiles);
    this.auxiliaryFiles = List.copyOf(auxiliaryFiles);
    this.totalWeightBytes = totalWeightBytes;
    this.parameterCount = parameterCount;
    this.dominantDType = dominantDType;
  }

  /**
   * Inspects and validates {@code dir}: reads {@code config.json} and every weight file's header.
   *
   * @throws CheckpointFormatException if the config, the weights or a link is unacceptable
   */
  public static ModelDirectory open(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointFormatException(dir + ": expected a model directory, found none");
    }
    Path realDir = dir.toRealPath();
    Path configFile = realDir.resolve(CONFIG);
    if (!Files.exists(configFile, LinkOption.NOFOLLOW_LINKS)) {
      throw new CheckpointFormatException(
          dir + ": expected config.json (the model's architecture), found no such file");
    }
    JsonNode config = readJsonObject(Checkpoints.insideDir(realDir, configFile));
    // weights() serves shared tensors dense (SharedTensorSource); so does the config stages copy
    ((com.fasterxml.jackson.databind.node.ObjectNode) config).remove(SharedTensorSource.KEY);

    List<Path> safetensors = new ArrayList<>();
    List<Path> pickles = new ArrayList<>();
    Checkpoints.listWeightFiles(realDir, safetensors, pickles);
    if (!pickles.isEmpty()) {
      if (safetensors.isEmpty()) {
        throw Checkpoints.pickleRefused(pickles);
      }
      LOG.warn(
          "{}: ignoring pickle files {} (never deserialized); using the safetensors weights",
          dir,
          Checkpoints.fileNames(pickles));
    }

    List<Path> weightFiles = new ArrayList<>();
    long bytes = 0;
    long params = 0;
    Map<DType, Long> bytesByType = new EnumMap<>(DType.class);
    try (TensorSource view = Checkpoints.open(realDir)) {
      // bytes as stored, parameters as the model sees them (a sparse checkpoint stores fewer)
      TensorSource weights = view instanceof SparseBitmaskSource s ? s.stored() : view;
      if (weights instanceof SharedTensorSource shared) {
        // a shared tensor is stored (and counted in bytes) once
        weights = shared.stored();
      }
      if (weights instanceof ShardedTensorSource sharded) {
        weightFiles.add(realDir.resolve(Checkpoints.INDEX));
        for (SafetensorsFile s : sharded.shards()) {
          weightFiles.add(s.path());
        }
      } else if (weights instanceof SafetensorsFile single) {
        weightFiles.add(single.path());
      }
      for (String name : weights.names()) {
        TensorInfo t = weights.info(name);
        bytes += t.byteLength();
        bytesByType.merge(t.dtype(), t.byteLength(), Long::sum);
      }
      for (String name : view.names()) {
        params += view.info(name).numel();
      }
    }
    DType dominant =
        bytesByType.entrySet().stream()
            .max(Map.Entry.comparingByValue())
            .map(Map.Entry::getKey)
            .orElse(DType.F32);

    List<Path> aux = new ArrayList<>();
    for (String name : AUXILIARY_FILE_NAMES) {
      Path p = realDir.resolve(name);
      if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
        aux.add(Checkpoints.insideDir(realDir, p));
      }
    }
    return new ModelDirectory(realDir, config, weightFiles, aux, bytes, params, dominant);
  }

  /** Reads a JSON object with the checkpoint limits (nesting, duplicate keys). */
  public static JsonNode readJsonObject(Path file) throws IOException {
    JsonNode node;
    try (InputStream in = Files.newInputStream(file)) {
      node = JsonLimits.DOCUMENT.readTree(in);
    } catch (JsonProcessingException e) {
      throw new CheckpointFormatException(
          file + ": expected well-formed JSON, found: " + e.getOriginalMessage(), e);
    }
    if (node == null || !node.isObject()) {
      throw new CheckpointFormatException(
          file + ": expected a JSON object, found " + (node == null ? "an empty file" : node));
    }
    return node;
  }

  /** The directory (real path). */
  public Path path() {
    return dir;
  }

  /** The parsed {@code config.json} (a JSON object). Callers must not modify it. */
  public JsonNode configJson() {
    return config;
  }

  /** Opens the weights; the caller closes them. */
  public TensorSource weights() throws IOException {
    return Checkpoints.open(dir);
  }

  /** Weight files: the single file, or the index followed by the shards. */
  public List<Path> weightFiles() {
    return weightFiles;
  }

  /** Tokenizer and generation files present, in {@link #AUXILIARY_FILE_NAMES} order. */
  public List<Path> auxiliaryFiles() {
    return auxiliaryFiles;
  }

  /** Copies the auxiliary files into {@code out} (created if needed), replacing older copies. */
  public void copyAuxiliaryFilesTo(Path out) throws IOException {
    Files.createDirectories(out);
    for (Path p : auxiliaryFiles) {
      Files.copy(p, out.resolve(p.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /**
   * Copies every {@link #AUXILIARY_FILE_NAMES} file present in {@code sourceDir} into {@code out},
   * for writers that hold only the source path. Tokenizer, chat template and generation settings
   * travel with every output model, so a compacted model chats and stops like its source. A file
   * that is a link leading outside {@code sourceDir} is refused.
   */
  public static void copyAuxiliaryFiles(Path sourceDir, Path out) throws IOException {
    Path realDir = sourceDir.toRealPath();
    Files.createDirectories(out);
    for (String name : AUXILIARY_FILE_NAMES) {
      Path p = realDir.resolve(name);
      if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
        Files.copy(
            Checkpoints.insideDir(realDir, p),
            out.resolve(name),
            StandardCopyOption.REPLACE_EXISTING);
      }
    }
  }

  /** Writes {@code config} as {@code out/config.json} (pretty-printed, UTF-8). */
  public static void writeConfig(Path out, JsonNode config) throws IOException {
    Files.createDirectories(out);
    byte[] json =
        JsonLimits.DOCUMENT
            .writerWithDefaultPrettyPrinter()
            .writeValueAsString(config)
            .getBytes(StandardCharsets.UTF_8);
    Files.write(out.resolve(CONFIG), json);
  }

  /** Sum of all tensors' byte lengths. */
  public long totalWeightBytes() {
    return totalWeightBytes;
  }

  /** Sum of all tensors' element counts. */
  public long parameterCount() {
    return parameterCount;
  }

  /** The storage type holding most of the weight bytes (F32 for a model without tensors). */
  public DType dominantDType() {
    return dominantDType;
  }

  /** Every file the model consists of: config, weight files, auxiliary files. */
  public List<Path> modelFiles() {
    List<Path> all = new ArrayList<>();
    all.add(dir.resolve(CONFIG));
    all.addAll(weightFiles);
    all.addAll(auxiliaryFiles);
    return all;
  }

  /**
   * SHA-256 of every {@link #modelFiles() model file}, keyed by file name, as lowercase hex;
   * computed by streaming, for provenance records.
   */
  public Map<String, String> sha256Files() throws IOException {
    Map<String, String> out = new TreeMap<>();
    for (Path p : modelFiles()) {
      out.put(p.getFileName().toString(), sha256(p));
    }
    return Collections.unmodifiableMap(out);
  }

  /** SHA-256 of one file as lowercase hex, read in 1 MiB chunks. */
  public static String sha256(Path file) throws IOException {
    MessageDigest md;
    try {
      md = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime provides SHA-256", e);
    }
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(file)) {
      for (int r = in.read(buf); r >= 0; r = in.read(buf)) {
        md.update(buf, 0, r);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  @Override
  public String toString() {
    return "ModelDirectory["
        + dir
        + ", "
        + parameterCount
        + " parameters, "
        + dominantDType
        + ", "
        + weightFiles.size()
        + " weight files]";
  }
}
