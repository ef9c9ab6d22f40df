package dev.compactor.core.quant.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.quant.export.CompressedTensorsReader;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizationPipelineTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path tmp;
  static Path model;
  static CalibrationText text;

  @BeforeAll
  static void makeModel() throws Exception {
    model = tmp.resolve("model");
    ModelConfig config = ModelConfig.llama(257, 64, 128, 2, 4, 2, 128);
    try (Transformer t = Transformer.randomInit(config, 11, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(model, 128);
    Path file = tmp.resolve("calib.txt");
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 100; i++) {
      sb.append("Paragraph ").append(i).append(" of the calibration text, about foxes.\n\n");
    }
    Files.writeString(file, sb);
    text = CalibrationText.file(file);
  }

  private static QuantizationPipeline.Result run(
      WeightQuantization q,
      QuantizationPipeline.Calibration cal,
      boolean imatrix,
      QuantizationPipeline.Outputs outputs)
      throws IOException {
    ObjectNode origin = JSON.createObjectNode().put("tool", "test");
    return QuantizationPipeline.run(
        new QuantizationPipeline.Request(model, q, cal, imatrix, outputs),
        origin,
        QuantizationPipeline.Progress.NONE);
  }

  private static QuantizationPipeline.Outputs hfOnly(Path dir) {
    return new QuantizationPipeline.Outputs(dir, null, List.of(), null);
  }

  @Test
  void rtnLinearsEqualTheReferenceRoundTripAndOtherTensorsAreCopiedBitForBit() throws Exception {
    Path out = tmp.resolve("int4-g32-sym");
    List<String> messages = new ArrayList<>();
    List<Double> fractions = new ArrayList<>();
    QuantizationPipeline.Result r =
        QuantizationPipeline.run(
            new QuantizationPipeline.Request(
                model, new WeightQuantization(Method.RTN, 4, 32, true), null, false, hfOnly(out)),
            JSON.createObjectNode().put("tool", "test"),
            (f, m) -> {
              fractions.add(f);
              messages.add(m);
            });
    assertEquals(14, r.layers().quantizedLinears());
    assertEquals(List.of(0.5, 1.0), fractions, messages.toString());
    assertTrue(messages.get(1).startsWith("rtn layer 2/2 done"), messages.toString());
    RtnQuantizer reference = new RtnQuantizer(4, true, 32);
    long expectedBytes = 0;
    long linearSourceBytes = 0;
    try (TensorSource in = Checkpoints.open(model);
        TensorSource q = Checkpoints.open(out)) {
      assertEquals(in.names().size(), q.names().size());
      for (String name : in.names()) {
        if (name.startsWith("model.layers.") && name.endsWith("_proj.weight")) {
          long[] shape = in.info(name).shape();
          QuantizedTensor ref =
              reference.quantize(in.readFloats(name), (int) shape[0], (int) shape[1]);
          assertArrayEquals(ref.dequantize(), q.readFloats(name), name);
          expectedBytes += ref.packedCodes().length + 2L * ref.scales().length;
          linearSourceBytes += in.info(name).byteLength();
        } else {
          assertEquals(in.raw(name).duplicate(), q.raw(name).duplicate(), name);
        }
      }
    }
    assertEquals(expectedBytes, r.layers().quantizedLinearBytes());
    assertEquals(r.sourceBytes() - linearSourceBytes + expectedBytes, r.quantizedModelBytes());
    JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
    JsonNode qc = config.get("quantization_config");
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(32, qc.get("group_size").asInt());
    assertTrue(qc.get("symmetric").asBoolean());
    JsonNode p = config.get(QuantizationPipeline.PROVENANCE_KEY);
    assertEquals("test", p.get("tool").asText());
    assertTrue(p.get("calibration").isNull());
    assertEquals(
        ModelDirectory.sha256(model.resolve("model.safetensors")),
        p.at("/input/sha256/model.safetensors").asText());
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    try (Transformer loaded = Transformer.load(out, Device.cpu())) {
      assertEquals(257, loaded.vocabSize());
    }
  }

  @Test
  void sameInputAndSettingsGiveByteIdenticalOutput() throws Exception {
    WeightQuantization q = new WeightQuantization(Method.RTN, 8, 0);
    run(q, null, false, hfOnly(tmp.resolve("det-a")));
    run(q, null, false, hfOnly(tmp.resolve("det-b")));
    for (String f : List.of("config.json", "model.safetensors")) {
      assertArrayEquals(
          Files.readAllBytes(tmp.resolve("det-a").resolve(f)),
          Files.readAllBytes(tmp.resolve("det-b").resolve(f)),
          f);
    }
  }

  @Test
  void gptqWritesConsistentExportsAndRecordsItsCalibration() throws Exception {
    Path dir = tmp.resolve("gptq");
    WeightQuantization q = new WeightQuantization(Method.GPTQ, 4, 32, true);
    QuantizationPipeline.Outputs outputs =
        new QuantizationPipeline.Outputs(
            dir, dir.resolve("compressed-tensors"), List.of(LlamaFileType.Q8_0), dir);
    QuantizationPipeline.Result r =
        run(q, new QuantizationPipeline.Calibration(text, 4, 32, 0), true, outputs);
    assertEquals(1, r.gguf().size());
    assertTrue(r.timings().containsKey("imatrix_s"));
    try (GgufReader g = GgufReader.open(dir.resolve("model-q8_0.gguf"))) {
      assertEquals(GgmlType.Q8_0, g.tensor("blk.0.attn_q.weight").type());
    }
    try (TensorSource ct = Checkpoints.open(dir.resolve("compressed-tensors"));
        TensorSource hf = Checkpoints.open(dir)) {
      String prefix = "model.layers.1.mlp.down_proj";
      float[] decoded =
          CompressedTensorsReader.readLinear(ct, prefix, QuantizationPipeline.scheme(q))
              .dequantize();
      float[] dense = hf.readFloats(prefix + ".weight");
      assertEquals(dense.length, decoded.length);
      for (int i = 0; i < dense.length; i++) {
        assertEquals(dense[i], decoded[i], 1e-6f * Math.max(1, Math.abs(dense[i])), prefix);
      }
    }
    for (Path config :
        List.of(dir.resolve("config.json"), dir.resolve("compressed-tensors/config.json"))) {
      JsonNode p = JSON.readTree(config.toFile()).get(QuantizationPipeline.PROVENANCE_KEY);
      assertEquals(text.sha256(), p.at("/calibration/sha256").asText(), config.toString());
      assertEquals(4, p.at("/calibration/samples").asInt());
      assertTrue(p.get("gptq").asText().contains("symmetric=true"), p.toString());
      assertTrue(p.get("gguf_note").asText().contains("importance matrix"));
    }
    // the GPTQ output differs from plain RTN on the same grid: the error feedback moved weights
    run(new WeightQuantization(Method.RTN, 4, 32, true), null, false, hfOnly(tmp.resolve("rtn")));
    try (TensorSource a = Checkpoints.open(dir);
        TensorSource b = Checkpoints.open(tmp.resolve("rtn"))) {
      String w = "model.layers.0.self_attn.q_proj.weight";
      assertFalse(java.util.Arrays.equals(a.readFloats(w), b.readFloats(w)));
    }
  }

  @Test
  void impossibleRequestsAreRefusedBeforeAnyWork() throws Exception {
    Path dir = tmp.resolve("refused");
    UnsupportedOperationException fp8 =
        assertThrows(
            UnsupportedOperationException.class,
            () ->
                new QuantizationPipeline.Request(
                    model,
                    new WeightQuantization(Method.FP8, 8, 0),
                    null,
                    false,
                    new QuantizationPipeline.Outputs(null, dir, List.of(), null)));
    assertTrue(fp8.getMessage().contains("not supported yet"), fp8.getMessage());
    IllegalArgumentException noText =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                new QuantizationPipeline.Request(
                    model, new WeightQuantization(Method.AWQ, 4, 32), null, false, hfOnly(dir)));
    assertTrue(noText.getMessage().contains("needs calibration text"), noText.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantizationPipeline.Outputs(null, null, List.of(), null));
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("keep.txt"), "not mine");
    IOException notEmpty =
        assertThrows(
            IOException.class,
            () -> run(new WeightQuantization(Method.RTN, 8, 0), null, false, hfOnly(dir)));
    assertTrue(notEmpty.getMessage().contains("must be empty"), notEmpty.getMessage());
    assertEquals("not mine", Files.readString(dir.resolve("keep.txt")));
  }
}
