package dev.compactor.cli.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.export.CompressedTensorsReader;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End-to-end {@code compactor quantize} on a small random Llama (rows of 256, so every GGUF type
 * applies) for every method and export: the outputs load with this project's readers.
 */
class QuantizeCommandIT {

  static final ModelConfig CONFIG = ModelConfig.llama(257, 256, 512, 2, 4, 2, 64);
  static final List<String> LINEARS =
      List.of(
          "self_attn.q_proj",
          "self_attn.k_proj",
          "self_attn.v_proj",
          "self_attn.o_proj",
          "mlp.gate_proj",
          "mlp.up_proj",
          "mlp.down_proj");

  /** Elements of each linear: q/o 256x256, k/v 128x256 (2 kv heads), gate/up/down 512x256. */
  static final Map<String, Integer> SIZES =
      Map.of(
          "self_attn.q_proj", 65536,
          "self_attn.k_proj", 32768,
          "self_attn.v_proj", 32768,
          "self_attn.o_proj", 65536,
          "mlp.gate_proj", 131072,
          "mlp.up_proj", 131072,
          "mlp.down_proj", 131072);

  @TempDir static Path tmp;
  static Path model;
  static Path calibration;

  @BeforeAll
  static void model() throws Exception {
    model = tmp.resolve("model");
    try (Transformer t = Transformer.randomInit(CONFIG, 7, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(model, CONFIG.maxPositions());
    calibration = tmp.resolve("calib.txt");
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < 200; i++) {
      text.append("Calibration paragraph ").append(i).append(": the quick brown fox.\n\n");
    }
    Files.writeString(calibration, text);
  }

  private static JsonNode quantize(Path out, String... args) throws Exception {
    List<String> a = new ArrayList<>(List.of("quantize", "--model", model.toString()));
    a.addAll(List.of(args));
    a.addAll(List.of("--out", out.toString(), "--json"));
    CliRun r = CliRun.of(a.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("layer 2/2 done") || !a.contains("safetensors"), r.err());
    assertEquals(1, r.out().strip().lines().count(), r.out());
    return new ObjectMapper().readTree(r.out());
  }

  @Test
  void rtnWritesEveryExportAndTheProvenance() throws Exception {
    Path out = tmp.resolve("rtn");
    JsonNode summary =
        quantize(
            out,
            "--method",
            "rtn",
            "--bits",
            "4",
            "--group-size",
            "128",
            "--asymmetric",
            "--export",
            "safetensors,compressed-tensors,gguf:q8_0,gguf:q6_k,gguf:q4_k,gguf:q4_0");
    double bpw = summary.get("bits_per_weight").asDouble();
    assertTrue(bpw > 4.1 && bpw < 4.2, "4 bits + fp16 scale + 4-bit zero per 128: " + bpw);
    assertTrue(
        summary.get("quantized_model_bytes").asLong() < summary.get("source_bytes").asLong());
    checkHf(out.resolve("safetensors"));
    assertFalse(summary.get("symmetric").asBoolean());
    checkCompressedTensors(out, new WeightQuantization(Method.RTN, 4, 128, false));
    // gguf:q4_k is llama-quantize's alias of q4_k_m
    for (LlamaFileType t :
        List.of(LlamaFileType.Q8_0, LlamaFileType.Q6_K, LlamaFileType.Q4_K_M, LlamaFileType.Q4_0)) {
      Path f = out.resolve("model-" + t.label() + ".gguf");
      try (GgufReader g = GgufReader.open(f)) {
        assertEquals(t.id(), g.require("general.file_type").asLong());
        long cols = g.tensor("blk.1.attn_q.weight").rowLength();
        assertEquals(
            LlamaGgufExporter.fallbackType(t.defaultType(), cols),
            g.tensor("blk.1.attn_q.weight").type());
        assertEquals("llama", g.require("general.architecture").value());
      }
      assertTrue(summary.toString().contains("model-" + t.label() + ".gguf"));
    }
    JsonNode p = new ObjectMapper().readTree(out.resolve("compactor.json").toFile());
    assertEquals("rtn", p.get("method").asText());
    assertEquals(4, p.get("bits").asInt());
    assertEquals(128, p.get("group_size").asInt());
    assertEquals("quantize", p.at("/command_line/0").asText());
    assertTrue(p.get("command_line").toString().contains("gguf:q4_k"));
    assertEquals(
        ModelDirectory.sha256(model.resolve("model.safetensors")),
        p.at("/input/sha256/model.safetensors").asText());
    JsonNode hfConfig =
        new ObjectMapper().readTree(out.resolve("safetensors/config.json").toFile());
    assertEquals(p, hfConfig.get(QuantizationPipeline.PROVENANCE_KEY));
    JsonNode ctConfig =
        new ObjectMapper().readTree(out.resolve("compressed-tensors/config.json").toFile());
    assertEquals(p, ctConfig.get(QuantizationPipeline.PROVENANCE_KEY));
    assertEquals("compressed-tensors", ctConfig.at("/quantization_config/quant_method").asText());
  }

  @Test
  void gptqWithACalibrationFileRecordsItsHashAndUsesItForTheImatrix() throws Exception {
    Path out = tmp.resolve("gptq");
    quantize(
        out,
        "--method",
        "gptq",
        "--bits",
        "4",
        "--group-size",
        "32",
        "--calibration",
        calibration.toString(),
        "--export",
        "safetensors,compressed-tensors,gguf:q4_k");
    checkHf(out.resolve("safetensors"));
    // symmetric: the default grid of recipes and of the command
    checkCompressedTensors(out, new WeightQuantization(Method.GPTQ, 4, 32, true));
    JsonNode p = new ObjectMapper().readTree(out.resolve("compactor.json").toFile());
    assertEquals(ModelDirectory.sha256(calibration), p.at("/calibration/sha256").asText());
    assertTrue(p.at("/calibration/source").asText().startsWith("file:"));
    assertTrue(p.get("gguf_note").asText().contains("importance matrix"));
    try (GgufReader g = GgufReader.open(out.resolve("model-q4_k_m.gguf"))) {
      assertEquals(GgmlType.Q4_K, g.tensor("blk.0.attn_q.weight").type());
    }
  }

  @Test
  void awqWithoutCalibrationUsesTheBuiltinTextAndSaysSo() throws Exception {
    Path out = tmp.resolve("awq");
    CliRun r =
        CliRun.of(
            "quantize",
            "--model",
            model.toString(),
            "--method",
            "awq",
            "--bits",
            "4",
            "--group-size",
            "64",
            "--export",
            "compressed-tensors,safetensors",
            "--out",
            out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("no --calibration given"), r.err());
    assertTrue(r.out().contains("bits per quantized weight"), r.out());
    checkHf(out.resolve("safetensors"));
    checkCompressedTensors(out, new WeightQuantization(Method.AWQ, 4, 64, false));
    JsonNode p = new ObjectMapper().readTree(out.resolve("compactor.json").toFile());
    assertEquals(Corpus.BUILTIN_EUROPARL, p.at("/calibration/source").asText());
  }

  @Test
  void fp8Nf4AndInt8ProduceLoadableCheckpoints() throws Exception {
    quantize(tmp.resolve("fp8"), "--method", "fp8");
    checkHf(tmp.resolve("fp8/safetensors"));
    quantize(tmp.resolve("nf4"), "--method", "nf4", "--group-size", "64");
    checkHf(tmp.resolve("nf4/safetensors"));
    Path int8 = tmp.resolve("int8");
    JsonNode s =
        quantize(
            int8,
            "--method",
            "rtn",
            "--bits",
            "8",
            "--symmetric",
            "--export",
            "compressed-tensors");
    assertTrue(s.get("symmetric").asBoolean());
    checkCompressedTensors(int8, new WeightQuantization(Method.RTN, 8, 0, true));
    JsonNode ct =
        new ObjectMapper().readTree(int8.resolve("compressed-tensors/config.json").toFile());
    assertTrue(ct.toString().contains("\"symmetric\":true"), ct.toString());
  }

  private static void checkHf(Path dir) throws Exception {
    try (Transformer t = Transformer.load(dir, Device.cpu())) {
      assertEquals(257, t.vocabSize());
    }
  }

  /** Every packed linear decodes to the dequantized safetensors' weight (when both exist). */
  private static void checkCompressedTensors(Path out, WeightQuantization q) throws Exception {
    Path ct = out.resolve("compressed-tensors");
    Path hf = out.resolve("safetensors");
    boolean compare = Files.isDirectory(hf);
    try (TensorSource c = Checkpoints.open(ct);
        TensorSource h = compare ? Checkpoints.open(hf) : null) {
      for (int l = 0; l < CONFIG.numLayers(); l++) {
        for (String linear : LINEARS) {
          String prefix = "model.layers." + l + "." + linear;
          float[] decoded =
              CompressedTensorsReader.readLinear(c, prefix, QuantizationPipeline.scheme(q))
                  .dequantize();
          assertEquals(SIZES.get(linear), decoded.length, prefix);
          if (compare) {
            float[] dense = h.readFloats(prefix + ".weight");
            for (int i = 0; i < dense.length; i++) {
              assertEquals(dense[i], decoded[i], 1e-6f * Math.max(1, Math.abs(dense[i])), prefix);
            }
          }
        }
      }
    }
  }
}
