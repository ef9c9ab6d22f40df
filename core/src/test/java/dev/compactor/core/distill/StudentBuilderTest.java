package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StudentBuilderTest {

  @Test
  void keepsEvenlySpacedLayersRenumberedWithTheirWeights(@TempDir Path tmp) throws Exception {
    Path teacherDir;
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(4), 9, Device.cpu())) {
      teacherDir = TestModels.write(teacher, tmp.resolve("teacher"), DType.BF16);
    }
    StudentBuilder.Student student = StudentBuilder.build(teacherDir, tmp.resolve("student"), 2);
    assertArrayEquals(new int[] {0, 3}, student.keptLayers());
    assertEquals(4, student.teacherLayers());

    try (Transformer s = Transformer.load(tmp.resolve("student"), Device.cpu())) {
      assertEquals(2, s.config().numLayers());
    }
    assertEquals(
        2,
        new ObjectMapper()
            .readTree(tmp.resolve("student/config.json").toFile())
            .get("num_hidden_layers")
            .asInt());
    assertEquals(
        TestModels.TOKENIZER_JSON, Files.readString(tmp.resolve("student/tokenizer.json")));
    try (TensorSource t = Checkpoints.open(teacherDir);
        TensorSource s = Checkpoints.open(tmp.resolve("student"))) {
      assertEquals(t.names().size() - 2 * 9, s.names().size(), "two layers of 9 tensors dropped");
      for (String name : s.names()) {
        String from = name.replace("model.layers.1.", "model.layers.3.");
        assertEquals(TestModels.bytes(t.raw(from)), TestModels.bytes(s.raw(name)), name);
      }
      assertFalse(s.contains("model.layers.2.input_layernorm.weight"));
    }
  }

  @Test
  void explicitLayersAndBadRequests(@TempDir Path tmp) throws Exception {
    Path teacherDir;
    try (Transformer teacher = Transformer.randomInit(TestModels.tinyLlama(3), 2, Device.cpu())) {
      teacherDir = TestModels.write(teacher, tmp.resolve("teacher"), DType.F32);
    }
    StudentBuilder.buildWithLayers(teacherDir, tmp.resolve("s"), 1);
    try (TensorSource t = Checkpoints.open(teacherDir);
        TensorSource s = Checkpoints.open(tmp.resolve("s"))) {
      assertArrayEquals(
          t.readFloats("model.layers.1.mlp.down_proj.weight"),
          s.readFloats("model.layers.0.mlp.down_proj.weight"));
    }
    assertThrows(
        IllegalArgumentException.class,
        () -> StudentBuilder.buildWithLayers(teacherDir, tmp.resolve("x"), 0, 3));
    assertThrows(
        IllegalArgumentException.class,
        () -> StudentBuilder.build(teacherDir, tmp.resolve("y"), 4));
    assertThrows(
        java.io.IOException.class, () -> StudentBuilder.build(teacherDir, tmp.resolve("s"), 2));
  }

  @Test
  void gpt2TeachersUseTheirOwnLayerNamesAndCountKey(@TempDir Path tmp) throws Exception {
    ModelConfig gpt2 =
        ModelConfig.fromJson(
            "{\"model_type\":\"gpt2\",\"vocab_size\":57,\"n_embd\":32,\"n_layer\":3,"
                + "\"n_head\":4,\"n_positions\":40}");
    Path teacherDir;
    try (Transformer teacher = Transformer.randomInit(gpt2, 2, Device.cpu())) {
      teacherDir = TestModels.write(teacher, tmp.resolve("teacher"), DType.F32);
    }
    StudentBuilder.build(teacherDir, tmp.resolve("s"), 2);
    try (Transformer s = Transformer.load(tmp.resolve("s"), Device.cpu());
        TensorSource t = Checkpoints.open(teacherDir)) {
      assertEquals(2, s.config().numLayers());
      assertArrayEquals(
          t.readFloats("transformer.h.2.mlp.c_fc.weight"),
          s.parameters().get("transformer.h.1.mlp.c_fc.weight").toFloatArray());
    }
  }
}
