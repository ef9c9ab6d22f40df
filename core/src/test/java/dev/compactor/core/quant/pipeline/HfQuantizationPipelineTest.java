package dev.compactor.core.quant.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.QuantizedTensor;
import dev.compactor.core.quant.RtnQuantizer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfQuantizationPipelineTest {

  @TempDir static Path tmp;
  static Path model;

  @BeforeAll
  static void makeModel() throws Exception {
    model = tmp.resolve("model");
    ModelConfig config = ModelConfig.llama(257, 64, 128, 2, 4, 2, 128);
    try (Transformer t = Transformer.randomInit(config, 11, Device.cpu())) {
      t.save(model, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(model, 128);
  }

  @Test
  void linearWeightsEqualTheRtnRoundTripAndOtherTensorsAreCopiedBitForBit() throws Exception {
    Path out = tmp.resolve("int4-g32");
    HfQuantizationPipeline.Result r =
        HfQuantizationPipeline.run(model, out, QuantizationSpec.rtn(4, 32, true));
    assertEquals(14, r.quantizedTensors());
    RtnQuantizer reference = new RtnQuantizer(4, true, 32);
    long expectedBytes = 0;
    try (TensorSource in = Checkpoints.open(model);
        TensorSource q = Checkpoints.open(out)) {
      assertEquals(in.names().size(), q.names().size());
      for (String name : in.names()) {
        if (HfQuantizationPipeline.isQuantized(name)) {
          long[] shape = in.info(name).shape();
          QuantizedTensor ref =
              reference.quantize(in.readFloats(name), (int) shape[0], (int) shape[1]);
          assertArrayEquals(ref.dequantize(), q.readFloats(name), name);
          expectedBytes += ref.packedCodes().length + 2L * ref.scales().length;
        } else {
          assertEquals(bytes(in.raw(name)), bytes(q.raw(name)), name);
        }
      }
    }
    assertEquals(expectedBytes, r.quantizedWeightBytes());
    assertTrue(r.quantizedModelBytes() < r.sourceWeightBytes() / 2);
    JsonNode qc =
        new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("quantization_config");
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(32, qc.get("group_size").asInt());
    assertTrue(qc.get("symmetric").asBoolean());
    assertEquals(7, qc.get("modules").size());
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    try (Transformer loaded = Transformer.load(out, Device.cpu())) {
      assertEquals(257, loaded.vocabSize());
    }
  }

  @Test
  void int8PerChannelWithGgufExport() throws Exception {
    Path out = tmp.resolve("int8");
    HfQuantizationPipeline.Result r =
        HfQuantizationPipeline.run(
            model, out, QuantizationSpec.rtn(8, 0, true).withGguf(List.of(GgmlType.Q8_0)));
    assertEquals(1, r.ggufFiles().size());
    assertTrue(r.weightRmse() > 0);
    try (GgufReader g = GgufReader.open(r.ggufFiles().get(0))) {
      assertEquals(GgmlType.Q8_0, g.tensor("blk.0.attn_q.weight").type());
    }
    assertEquals(
        -1,
        new ObjectMapper()
            .readTree(out.resolve("config.json").toFile())
            .at("/quantization_config/group_size")
            .asInt());
  }

  @Test
  void unbuiltMethodsAreRefusedClearly() {
    UnsupportedOperationException e =
        assertThrows(
            UnsupportedOperationException.class,
            () -> new QuantizationSpec("gptq", 4, 128, true, List.of()));
    assertTrue(e.getMessage().contains("not supported yet"));
  }

  private static ByteBuffer bytes(ByteBuffer b) {
    return b.duplicate();
  }
}
