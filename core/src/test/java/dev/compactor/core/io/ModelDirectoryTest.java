package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Inspecting, refusing and reproducing Hugging Face model directories. */
class ModelDirectoryTest {

  @TempDir Path tmp;
  private Path dir;

  @BeforeEach
  void smallModel() throws IOException {
    dir = Files.createDirectory(tmp.resolve("model"));
    Files.writeString(dir.resolve("config.json"), "{\"model_type\":\"llama\",\"hidden_size\":4}");
    Files.writeString(dir.resolve("tokenizer.json"), "{\"version\":\"1.0\"}");
    Files.writeString(dir.resolve("merges.txt"), "hello");
    try (SafetensorsWriter w = new SafetensorsWriter(dir, 40, Map.of())) {
      w.write("embed", DType.BF16, new long[] {4, 4}, new float[16]); // 32 bytes
      w.write("norm", DType.F32, new long[] {4}, new float[] {1, 1, 1, 1}); // 16 bytes
      w.write("head", DType.BF16, new long[] {2, 4}, new float[8]); // 16 bytes
    }
  }

  @Test
  void inspectsConfigWeightsAndAuxiliaryFiles() throws IOException {
    ModelDirectory m = ModelDirectory.open(dir);
    assertEquals("llama", m.configJson().get("model_type").asText());
    assertEquals(16 + 4 + 8, m.parameterCount());
    assertEquals(64, m.totalWeightBytes());
    assertEquals(DType.BF16, m.dominantDType());
    assertEquals(
        List.of("tokenizer.json", "merges.txt"),
        m.auxiliaryFiles().stream().map(p -> p.getFileName().toString()).toList());
    assertEquals(
        List.of(
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"),
        m.weightFiles().stream().map(p -> p.getFileName().toString()).toList());
    try (TensorSource w = m.weights()) {
      assertArrayEquals(new float[] {1, 1, 1, 1}, w.readFloats("norm"));
    }
    Map<String, String> sums = m.sha256Files();
    assertEquals(6, sums.size());
    // sha256("hello"), a published test vector.
    assertEquals(
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", sums.get("merges.txt"));
  }

  @Test
  void chatTemplateAndGenerationSettingsTravelWithEveryOutput() throws IOException {
    Map<String, String> files =
        Map.of(
            "tokenizer_config.json", "{\"chat_template\":\"{{ messages }}\"}",
            "generation_config.json", "{\"eos_token_id\":[1,2]}",
            "special_tokens_map.json", "{\"eos_token\":\"</s>\"}",
            "chat_template.jinja", "{% for m in messages %}{{ m }}{% endfor %}");
    for (Map.Entry<String, String> f : files.entrySet()) {
      Files.writeString(dir.resolve(f.getKey()), f.getValue());
    }
    Files.writeString(dir.resolve("notes.txt"), "not a model file");
    Path viaOpen = tmp.resolve("via-open");
    Path viaPath = tmp.resolve("via-path");
    ModelDirectory.open(dir).copyAuxiliaryFilesTo(viaOpen);
    ModelDirectory.copyAuxiliaryFiles(dir, viaPath);
    for (Path out : List.of(viaOpen, viaPath)) {
      for (Map.Entry<String, String> f : files.entrySet()) {
        assertEquals(f.getValue(), Files.readString(out.resolve(f.getKey())), f.getKey());
      }
      assertTrue(Files.exists(out.resolve("tokenizer.json")));
      assertTrue(Files.notExists(out.resolve("notes.txt")));
    }
  }

  @Test
  void outputDirectoryIsAgainAValidModelDirectory() throws IOException {
    ModelDirectory in = ModelDirectory.open(dir);
    Path out = tmp.resolve("out");
    ObjectNode config = in.configJson().deepCopy();
    config.put("hidden_size", 2);
    ModelDirectory.writeConfig(out, config);
    in.copyAuxiliaryFilesTo(out);
    try (TensorSource src = in.weights();
        SafetensorsWriter w = new SafetensorsWriter(out, Map.of("parent", "abc"))) {
      for (String name : src.names()) {
        w.write(name, DType.F16, src.info(name).shape(), src.readFloats(name));
      }
    }
    ModelDirectory again = ModelDirectory.open(out);
    assertEquals(2, again.configJson().get("hidden_size").asInt());
    assertEquals(DType.F16, again.dominantDType());
    assertEquals(in.parameterCount(), again.parameterCount());
    assertEquals(
        Files.readString(dir.resolve("tokenizer.json")),
        Files.readString(out.resolve("tokenizer.json")));
    try (TensorSource w = again.weights()) {
      assertEquals("abc", w.metadata().get("parent"));
      assertEquals("pt", w.metadata().get("format"));
    }
  }

  @Test
  void pickleOnlyDirectoryIsRefusedWithAnExplanation() throws IOException {
    for (String f :
        List.of(
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors")) {
      Files.delete(dir.resolve(f));
    }
    Files.writeString(dir.resolve("pytorch_model.bin"), "not read");
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("arbitrary code when they are loaded"), e.getMessage());
    assertTrue(e.getMessage().contains("pytorch_model.bin"), e.getMessage());
  }

  @Test
  void pickleNextToSafetensorsIsIgnored() throws IOException {
    Files.writeString(dir.resolve("pytorch_model.bin"), "\u0080 would fail if anything read it");
    Files.writeString(dir.resolve("training_args.pt"), "x");
    ModelDirectory m = ModelDirectory.open(dir);
    assertEquals(28, m.parameterCount());
    assertTrue(m.modelFiles().stream().noneMatch(p -> p.toString().endsWith(".bin")));
  }

  @Test
  void configIsRequiredAndMustBeAJsonObject() throws IOException {
    Files.writeString(dir.resolve("config.json"), "[1, 2]");
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("expected a JSON object"), e.getMessage());
    Files.writeString(dir.resolve("config.json"), "{\"a\":");
    e = assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("expected well-formed JSON"), e.getMessage());
    Files.delete(dir.resolve("config.json"));
    e = assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("expected config.json"), e.getMessage());
    e = assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(tmp.resolve("x")));
    assertTrue(e.getMessage().contains("expected a model directory"), e.getMessage());
  }

  @Test
  void linksLeadingOutsideTheDirectoryAreRefused() throws IOException {
    Path secret = Files.writeString(tmp.resolve("secret.json"), "{\"a\":1}");
    Files.delete(dir.resolve("tokenizer.json"));
    Files.createSymbolicLink(dir.resolve("tokenizer.json"), secret);
    CheckpointFormatException e =
        assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("found a link to"), e.getMessage());

    Files.delete(dir.resolve("tokenizer.json"));
    Files.delete(dir.resolve("config.json"));
    Files.createSymbolicLink(dir.resolve("config.json"), secret);
    e = assertThrows(CheckpointFormatException.class, () -> ModelDirectory.open(dir));
    assertTrue(e.getMessage().contains("found a link to"), e.getMessage());

    // A link inside the directory is fine.
    Files.delete(dir.resolve("config.json"));
    Files.writeString(dir.resolve("real-config.json"), "{\"model_type\":\"x\"}");
    Files.createSymbolicLink(dir.resolve("config.json"), Path.of("real-config.json"));
    Files.delete(dir.resolve("merges.txt"));
    Files.writeString(dir.resolve("merges-v2.txt"), "m");
    Files.createSymbolicLink(dir.resolve("merges.txt"), Path.of("merges-v2.txt"));
    ModelDirectory m = ModelDirectory.open(dir);
    assertEquals("x", m.configJson().get("model_type").asText());
    Path out = tmp.resolve("out");
    m.copyAuxiliaryFilesTo(out);
    assertEquals("m", Files.readString(out.resolve("merges.txt")), "copied under its own name");
    assertTrue(m.sha256Files().containsKey("merges.txt"));
  }
}
