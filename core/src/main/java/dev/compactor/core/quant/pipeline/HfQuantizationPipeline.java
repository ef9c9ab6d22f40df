package dev.compactor.core.quant.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.quant.QuantizedTensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Quantizes a Hugging Face checkpoint into another Hugging Face directory that any tool can load:
 * the decoder's linear weights go through the {@link QuantizationSpec}'s rounding and are written
 * back <em>dequantized</em> (in the source tensor's float type), so they hold exactly the values
 * the quantized model computes with; every other tensor (embeddings, norms, head, biases) is copied
 * byte for byte. {@code config.json} gains a {@code quantization_config} saying what was done, and
 * the recipe may ask for GGUF files (llama.cpp) of the result in the same directory.
 *
 * <p>The checkpoint is streamed one tensor at a time, so memory holds one weight matrix. The real
 * compressed size — codes plus scales (fp16) and zero points (one byte), plus the untouched tensors
 * as stored — is reported in {@link Result#quantizedModelBytes()}, because the dequantized files on
 * disk are as large as the input.
 */
public final class HfQuantizationPipeline {

  private static final Logger LOG = LoggerFactory.getLogger(HfQuantizationPipeline.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Llama-style decoder linears (what GPTQ/AWQ/compressed-tensors quantize by default). */
  static final Pattern DECODER_LINEAR =
      Pattern.compile(
          "^model\\.layers\\.\\d+\\.((self_attn\\.(q|k|v|o)_proj)|(mlp\\.(gate|up|down)_proj))"
              + "\\.weight$");

  /** The config.json key, read by Hugging Face tools to learn how a model was quantized. */
  public static final String CONFIG_KEY = "quantization_config";

  /**
   * Tag in {@code quantization_config.quant_method}; unknown to transformers, which then loads the
   * (dequantized) weights as plain floats.
   */
  public static final String QUANT_METHOD = "compactor-dequantized";

  /**
   * What was written.
   *
   * @param quantizedTensors linear weights quantized
   * @param copiedTensors tensors copied unchanged
   * @param quantizedParameters elements of the quantized weights
   * @param quantizedWeightBytes codes + scales + zero points of the quantized weights
   * @param quantizedModelBytes {@code quantizedWeightBytes} plus the copied tensors' bytes
   * @param sourceWeightBytes bytes of all tensors in the input
   * @param weightRmse root mean squared difference between quantized and original linear weights
   * @param ggufFiles GGUF files written in the output directory
   */
  public record Result(
      int quantizedTensors,
      int copiedTensors,
      long quantizedParameters,
      long quantizedWeightBytes,
      long quantizedModelBytes,
      long sourceWeightBytes,
      double weightRmse,
      List<Path> ggufFiles) {
    public Result {
      ggufFiles = List.copyOf(ggufFiles);
    }
  }

  private HfQuantizationPipeline() {}

  /** Whether {@code tensorName} is a decoder linear weight this pipeline quantizes. */
  public static boolean isQuantized(String tensorName) {
    return DECODER_LINEAR.matcher(tensorName).matches();
  }

  /**
   * Quantizes the model in {@code inputDir} into {@code outputDir} (absent or empty).
   *
   * @throws IOException on unreadable input or unwritable output
   * @throws IllegalArgumentException when a weight's shape does not fit the spec's group size
   */
  public static Result run(Path inputDir, Path outputDir, QuantizationSpec spec)
      throws IOException {
    if (Files.exists(outputDir)) {
      try (var entries = Files.list(outputDir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("output directory " + outputDir + " must be empty or absent");
        }
      }
    }
    ModelDirectory model = ModelDirectory.open(inputDir);
    int quantized = 0;
    int copied = 0;
    long params = 0;
    long qBytes = 0;
    long otherBytes = 0;
    double sqErr = 0;
    TreeSet<String> modules = new TreeSet<>();
    try (TensorSource src = model.weights()) {
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.put("compactor.quantize.method", spec.method());
      metadata.put("compactor.quantize.bits", Integer.toString(spec.bits()));
      try (SafetensorsWriter out = new SafetensorsWriter(outputDir, Long.MAX_VALUE, metadata)) {
        for (String name : src.names()) {
          TensorInfo info = src.info(name);
          if (!isQuantized(name) || info.shape().length != 2 || !isFloat(info.dtype())) {
            out.copy(src, name);
            otherBytes += info.byteLength();
            copied++;
            continue;
          }
          int rows = (int) info.shape()[0];
          int cols = (int) info.shape()[1];
          float[] w = src.readFloats(name);
          QuantizedTensor q;
          try {
            q = spec.quantize(w, rows, cols);
          } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
          }
          float[] deq = q.dequantize();
          for (int i = 0; i < w.length; i++) {
            double d = deq[i] - w[i];
            sqErr += d * d;
          }
          out.write(name, info.dtype(), info.shape(), deq);
          params += w.length;
          qBytes += storedBytes(q);
          quantized++;
          Matcher m = DECODER_LINEAR.matcher(name);
          if (m.matches()) {
            modules.add(m.group(1));
          }
        }
      }
    }
    if (quantized == 0) {
      throw new IllegalArgumentException(
          inputDir
              + ": expected Llama-style decoder linear weights (model.layers.N.self_attn.q_proj"
              + ".weight ...), found none to quantize");
    }
    model.copyAuxiliaryFilesTo(outputDir);
    ObjectNode config = (ObjectNode) model.configJson().deepCopy();
    config.set(CONFIG_KEY, quantizationConfig(spec, modules, params, qBytes));
    ModelDirectory.writeConfig(outputDir, config);
    List<Path> ggufFiles = new ArrayList<>();
    for (GgmlType type : spec.gguf()) {
      ggufFiles.add(exportGguf(outputDir, config, type));
    }
    Result r =
        new Result(
            quantized,
            copied,
            params,
            qBytes,
            qBytes + otherBytes,
            model.totalWeightBytes(),
            Math.sqrt(sqErr / Math.max(1, params)),
            ggufFiles);
    LOG.info(
        "quantized {} weights ({} parameters) with {} {}-bit: {} -> {} bytes, weight RMSE {}",
        quantized,
        params,
        spec.method(),
        spec.bits(),
        r.sourceWeightBytes(),
        r.quantizedModelBytes(),
        r.weightRmse());
    return r;
  }

  /** Codes, plus scales as fp16 and zero points as bytes, as compressed formats store them. */
  static long storedBytes(QuantizedTensor q) {
    return q.packedCodes().length
        + 2L * q.scales().length
        + (q.zeroPoints() == null ? 0 : q.zeroPoints().length);
  }

  private static boolean isFloat(DType t) {
    return t == DType.F32 || t == DType.F16 || t == DType.BF16;
  }

  private static ObjectNode quantizationConfig(
      QuantizationSpec spec, TreeSet<String> modules, long params, long bytes) {
    ObjectNode q = JSON.createObjectNode();
    q.put("quant_method", QUANT_METHOD);
    q.put("method", spec.method());
    q.put("bits", spec.bits());
    q.put("group_size", spec.groupSize() == 0 ? -1 : spec.groupSize());
    q.put("symmetric", spec.symmetric());
    ArrayNode mods = q.putArray("modules");
    modules.forEach(mods::add);
    q.put("weights_stored", "dequantized");
    ObjectNode c = q.putObject("compactor");
    c.put("quantized_parameters", params);
    c.put("quantized_weight_bytes", bytes);
    c.put(
        "note",
        "safetensors hold the dequantized values of the quantized weights, so any tool computes"
            + " with exactly the quantized model");
    return q;
  }

  private static Path exportGguf(Path dir, JsonNode config, GgmlType type) throws IOException {
    Path tokenizer = dir.resolve("tokenizer.json");
    if (!Files.exists(tokenizer)) {
      throw new IllegalArgumentException(
          "gguf export: expected tokenizer.json next to the model, found none");
    }
    JsonNode tok = JSON.readTree(tokenizer.toFile());
    Path out = dir.resolve("model-" + type.name().toLowerCase(Locale.ROOT) + ".gguf");
    String name = config.path("_name_or_path").asText("");
    if (name.isBlank()) {
      name = config.path("model_type").asText("model");
    }
    try (TensorSource src = ModelDirectory.open(dir).weights()) {
      LlamaGgufExporter.export(config, src, tok, LlamaGgufExporter.Options.of(name, type), out);
    }
    return out;
  }
}
