package dev.compactor.core.quant.mixed;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A per-linear mixed-precision plan applied to a model: each measured linear replaced by its chosen
 * option's RTN round trip, the model written as a plain fp32 Hugging Face directory whose {@code
 * quantization_config} names every linear's choice under {@code compactor_mixed_precision}.
 */
public final class MixedPrecision {

  /** Key of the per-linear block inside {@code quantization_config}. */
  public static final String BLOCK = "compactor_mixed_precision";

  private MixedPrecision() {}

  /** Replaces, in place, each of {@code linears} by option {@code choice[i]} dequantized. */
  public static void apply(
      Transformer model, List<Sensitivity.Linear> linears, int[] choice, List<QuantOption> opts) {
    Map<String, NDArray> params = model.parameters();
    for (int i = 0; i < linears.size(); i++) {
      Sensitivity.Linear l = linears.get(i);
      NDArray w = params.get(l.fullName());
      long[] shape = w.getShape().getShape();
      float[] q =
          opts.get(choice[i])
              .quantize(w.toFloatArray(), (int) shape[0], (int) shape[1])
              .dequantize();
      w.set(FloatBuffer.wrap(q));
    }
  }

  /** Total stored bytes of the linears under {@code choice}. */
  public static long bytes(List<Sensitivity.Linear> linears, int[] choice) {
    long b = 0;
    for (int i = 0; i < linears.size(); i++) {
      b += linears.get(i).options().get(choice[i]).bytes();
    }
    return b;
  }

  /** Weights in all measured linears. */
  public static long params(List<Sensitivity.Linear> linears) {
    return linears.stream().mapToLong(Sensitivity.Linear::params).sum();
  }

  /** The {@code quantization_config} of {@code choice}: weights stored dequantized. */
  public static ObjectNode quantizationConfig(
      List<Sensitivity.Linear> linears, int[] choice, List<QuantOption> opts) {
    ObjectNode n = JsonNodeFactory.instance.objectNode();
    n.put("quant_method", DequantizedCheckpointSink.QUANT_METHOD);
    n.put("method", "rtn");
    n.put("symmetric", false);
    n.put("weights_stored", "dequantized");
    long bytes = bytes(linears, choice);
    n.put("quantized_parameters", params(linears));
    n.put("quantized_weight_bytes", bytes);
    ObjectNode block = n.putObject(BLOCK);
    block.put("bits_per_weight", 8.0 * bytes / params(linears));
    block.put("sensitivity", "mean per-token KL vs fp32 with only this linear quantized");
    ArrayNode layers = block.putArray("linears");
    for (int i = 0; i < linears.size(); i++) {
      Sensitivity.Linear l = linears.get(i);
      QuantOption o = opts.get(choice[i]);
      ObjectNode x = layers.addObject();
      x.put("name", l.fullName());
      x.put("option", o.id());
      x.put("bits", o.bits());
      x.put("group_size", o.groupSize() == 0 ? -1 : o.groupSize());
      x.put("bytes", l.options().get(choice[i]).bytes());
      x.put("sensitivity", l.options().get(choice[i]).sensitivity());
    }
    return n;
  }

  /**
   * Writes {@code quantized} (already {@link #apply applied}) to {@code out} as fp32 safetensors
   * with {@code quantizationConfig} in config.json and {@code source}'s tokenizer files.
   */
  public static void write(
      Path source, Transformer quantized, ObjectNode quantizationConfig, Path out)
      throws IOException {
    quantized.save(out, DType.F32, Map.of());
    ModelDirectory src = ModelDirectory.open(source);
    src.copyAuxiliaryFilesTo(out);
    ObjectNode json = (ObjectNode) ModelDirectory.open(out).configJson().deepCopy();
    json.set(DequantizedCheckpointSink.CONFIG_KEY, quantizationConfig);
    ModelDirectory.writeConfig(out, json);
  }
}
