package dev.compactor.core.quant.table;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaGgufExporter;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.Codebook;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.calib.LinearStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes llama.cpp GGUF files of a Hugging Face model straight from its original (fp32/bf16/fp16)
 * weights, quantized by the ggml block quantizers as {@code llama-quantize} would, optionally
 * guided by an importance matrix collected from calibration text as {@code llama-imatrix} does.
 */
public final class GgufExport {

  private static final ObjectMapper JSON = new ObjectMapper();

  private GgufExport() {}

  /**
   * Exports {@code modelDir} to {@code out} as a {@code fileType} file with llama-quantize's tensor
   * mix for it; {@code importance} (GGUF tensor name to per-column importance) may be empty.
   */
  public static LlamaGgufExporter.Result export(
      Path modelDir, LlamaFileType fileType, Map<String, float[]> importance, Path out)
      throws IOException {
    return export(modelDir, fileType, Map.of(), importance, out);
  }

  /**
   * As {@link #export(Path, LlamaFileType, Map, Path)}, with per-tensor types in {@code overrides}
   * (llama-quantize's {@code --tensor-type}).
   */
  public static LlamaGgufExporter.Result export(
      Path modelDir,
      LlamaFileType fileType,
      Map<String, GgmlType> overrides,
      Map<String, float[]> importance,
      Path out)
      throws IOException {
    Codebook.refuseExport(modelDir, "GGUF");
    ModelDirectory model = ModelDirectory.open(modelDir);
    Path tokenizer = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tokenizer)) {
      throw new IllegalArgumentException(
          "gguf export: expected tokenizer.json in " + modelDir + ", found none");
    }
    JsonNode tok = JSON.readTree(tokenizer.toFile());
    JsonNode config = model.configJson();
    String name = config.path("_name_or_path").asText("");
    if (name.isBlank()) {
      name = modelDir.toAbsolutePath().getFileName().toString();
    }
    int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
    LlamaGgufExporter.Options options =
        new LlamaGgufExporter.Options(name, fileType, overrides, importance, threads);
    try (TensorSource src = model.weights()) {
      return LlamaGgufExporter.export(
          config,
          src,
          tok,
          optionalJson(modelDir.resolve("tokenizer_config.json")),
          optionalJson(modelDir.resolve("generation_config.json")),
          options,
          out);
    }
  }

  /**
   * The importance matrix of every decoder linear of the model in {@code modelDir} over {@code
   * samples}: mean squared input activation per column (llama-imatrix's {@code sum / count}), keyed
   * by GGUF tensor name. Collected one decoder layer at a time with full-precision propagation
   * ({@link CalibrationCollector}), so a model larger than memory needs only its embedding, one
   * layer and the windows' hidden states.
   */
  public static Map<String, float[]> imatrix(Path modelDir, List<int[]> samples)
      throws IOException {
    ModelConfig config = ModelConfig.read(modelDir);
    Map<String, float[]> out = new HashMap<>();
    LayerQuantizer collect =
        (layer, linears, weights, stats) -> {
          for (String linear : linears) {
            LinearStats s = stats.get(linear);
            if (!s.calibrated()) {
              // an expert hardly routed to: no importance, its blocks quantize unweighted
              continue;
            }
            double[] sq = s.sumOfSquares();
            float[] importance = new float[sq.length];
            for (int j = 0; j < sq.length; j++) {
              importance[j] = (float) (sq[j] / s.tokens());
            }
            out.put(GgufToHf.ggufLinearName(layer, linear), importance);
          }
        };
    try (TensorSource source = Checkpoints.open(modelDir)) {
      new CalibrationCollector(
              config,
              i -> LinearGroups.oneStage(config, i),
              CalibrationCollector.Propagation.ORIGINAL,
              false,
              4)
          .run(source, samples, collect);
    }
    return out;
  }

  private static JsonNode optionalJson(Path file) throws IOException {
    return Files.isRegularFile(file) ? JSON.readTree(file.toFile()) : MissingNode.getInstance();
  }
}
