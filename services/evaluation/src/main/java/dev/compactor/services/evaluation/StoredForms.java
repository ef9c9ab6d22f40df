package dev.compactor.services.evaluation;

import dev.compactor.events.StoredFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The forms a model artifact is stored in, measured from its files as written: the Hugging Face
 * {@code safetensors} directory (every top-level file but the GGUF exports: weights, config.json,
 * tokenizer), each {@code *.gguf} file on its own (self-contained), and the {@code
 * compressed-tensors/} directory. The bytes of a form are what a user downloads to run it; the
 * artifact's size is its smallest form. No figure here is computed from bits per weight.
 *
 * @param files every file of the artifact (manifest.json excluded), sorted by path
 */
public record StoredForms(List<StoredFile> files) {
  public static final String SAFETENSORS = "safetensors";
  public static final String GGUF = "gguf";
  public static final String COMPRESSED_TENSORS = "compressed-tensors";
  private static final String CT_DIR = COMPRESSED_TENSORS + "/";

  /**
   * A LoRA step's PEFT adapter ({@code adapter/}): published beside the model, but no form of it
   * (the weights already include it), so never the artifact's size.
   */
  public static final String PEFT_LORA = "peft-lora";

  private static final String ADAPTER_DIR = "adapter/";

  /** One stored form: {@code safetensors}, {@code gguf:<file>} or {@code compressed-tensors}. */
  public record Form(String name, long bytes) {}

  public StoredForms {
    files = files.stream().sorted(Comparator.comparing(StoredFile::getPath)).toList();
  }

  /** The form a file of an artifact belongs to, by its relative path. */
  public static String formatOf(String path) {
    if (path.startsWith(CT_DIR)) {
      return COMPRESSED_TENSORS;
    }
    if (path.startsWith(ADAPTER_DIR)) {
      return PEFT_LORA;
    }
    return path.endsWith(".gguf") ? GGUF : SAFETENSORS;
  }

  /** Measures the files under {@code dir} as they are on disk. */
  public static StoredForms scan(Path dir) throws IOException {
    List<StoredFile> files = new ArrayList<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.filter(Files::isRegularFile).toList()) {
        String rel = dir.relativize(p).toString().replace('\\', '/');
        if (rel.equals("manifest.json")) {
          continue;
        }
        files.add(new StoredFile(rel, formatOf(rel), Files.size(p)));
      }
    }
    return new StoredForms(files);
  }

  /**
   * Each form and its bytes; a safetensors or compressed-tensors form only counts when it holds a
   * {@code .safetensors} file (a directory of config files alone is no model).
   */
  public List<Form> forms() {
    Map<String, Long> bytes = new LinkedHashMap<>();
    Map<String, Boolean> hasWeights = new LinkedHashMap<>();
    for (StoredFile f : files) {
      if (f.getFormat().equals(PEFT_LORA)) {
        continue;
      }
      String name = f.getFormat().equals(GGUF) ? GGUF + ":" + f.getPath() : f.getFormat();
      bytes.merge(name, f.getSizeBytes(), Long::sum);
      hasWeights.merge(
          name,
          f.getFormat().equals(GGUF) || f.getPath().endsWith(".safetensors"),
          Boolean::logicalOr);
    }
    List<Form> out = new ArrayList<>();
    bytes.forEach(
        (name, b) -> {
          if (hasWeights.get(name)) {
            out.add(new Form(name, b));
          }
        });
    return out;
  }

  /**
   * The smallest form (ties: the first by name).
   *
   * @throws IllegalArgumentException when the artifact holds no model file at all
   */
  public Form smallest() {
    return forms().stream()
        .min(Comparator.comparingLong(Form::bytes).thenComparing(Form::name))
        .orElseThrow(
            () ->
                new IllegalArgumentException(
                    "artifact: expected a .safetensors or .gguf file, found "
                        + files.stream().map(StoredFile::getPath).toList()));
  }
}
