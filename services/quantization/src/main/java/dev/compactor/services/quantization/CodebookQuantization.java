package dev.compactor.services.quantization;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.Codebook;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.codebook.CodebookModelQuantizer;
import dev.compactor.core.quant.codebook.CodebookSettings;
import dev.compactor.core.quant.codebook.Sensitivity;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The quantize stage's {@code method: codebook}: the same {@link CodebookModelQuantizer} as {@code
 * compactor quantize --method codebook}. The artifact is a {@value Codebook#QUANT_METHOD}
 * checkpoint (packed indices and F16 per-row codebooks in safetensors, tokenizer, config.json with
 * its {@code quantization_config} and {@code compactor_provenance}): only Compactor loads it, and
 * {@code Checkpoints.open} serves it dequantized, so evaluation measures it like any other
 * artifact. GGUF and compressed-tensors exports are refused by the recipe check (neither format has
 * per-row codebooks).
 */
final class CodebookQuantization {
  private static final ObjectMapper JSON = new ObjectMapper();

  private CodebookQuantization() {}

  /** The settings of the recipe's {@code codebook} block. */
  static CodebookSettings settings(QuantizeParams p) {
    QuantizeParams.CodebookSpec c = p.codebook();
    return new CodebookSettings(
        p.bits(), Sensitivity.parse(c.sensitivity()), c.maxIterations(), c.exact());
  }

  static StageResult run(StageContext ctx, StageSpec stage, QuantizeParams params)
      throws Exception {
    CodebookSettings settings = settings(params);
    Path in = ctx.inputDir();
    Path out = ctx.outputDir();
    ModelConfig config = ModelConfig.read(in);
    ObjectNode provenance = JSON.createObjectNode();
    provenance.put("tool", "compactor quantization service");
    provenance.put("job_id", ctx.jobId());
    provenance.put("step", ctx.request().getStep());
    provenance.set("stage_params", JSON.readTree(ctx.request().getParamsJson()));
    provenance.put("recipe", ctx.request().getRecipeYaml());
    provenance.put("method", "codebook");
    provenance.put("bits", settings.bits());
    provenance.put("sensitivity", settings.sensitivity().id());
    provenance.put("kmeans", settings.exact() ? "exact" : "lloyd");
    provenance.put("max_iterations", settings.maxIterations());
    List<int[]> samples = List.of();
    if (settings.sensitivity().calibrated()) {
      QuantizationStage.CalibrationInput input = QuantizationStage.calibrationInput(ctx, stage, in);
      Calibration c = input.calibration();
      CalibrationText text = input.text();
      Corpus corpus = input.corpus();
      int seqLen = Math.min(c.seqLen(), config.maxPositions());
      try (TextTokenizer tok = Tokenizers.forModel(in)) {
        samples = corpus.calibrationSamples(tok, c.samples(), seqLen, QuantizationStage.SEED);
      }
      provenance
          .putObject("calibration")
          .put("source", text.source())
          .put("sha256", text.sha256())
          .put("samples", samples.size())
          .put("seq_len", seqLen)
          .put("seed", QuantizationStage.SEED);
    } else {
      provenance.putNull("calibration");
    }
    ObjectNode hashes = provenance.putObject("input").putObject("sha256");
    if (ctx.inputManifest().isPresent()) {
      // verified against its manifest on download: reuse those hashes
      ctx.inputManifest().get().files().forEach(f -> hashes.put(f.path(), f.sha256()));
    } else {
      ModelDirectory.open(in).sha256Files().forEach(hashes::put);
    }
    ctx.progress().report(0.02, settings.label());
    long t0 = System.nanoTime();
    CodebookModelQuantizer.Summary s =
        CodebookModelQuantizer.run(
            in,
            settings,
            samples,
            out,
            Map.of("compactor.quantize", settings.label(), "compactor.provenance", "config.json"),
            (phase, done, total) -> {
              ctx.checkCancelled();
              ctx.progress()
                  .report(
                      0.02 + 0.97 * done / Math.max(1, total), phase + " " + done + "/" + total);
            });
    ObjectNode configJson = (ObjectNode) ModelDirectory.readJsonObject(out.resolve("config.json"));
    configJson.set(QuantizationPipeline.PROVENANCE_KEY, provenance);
    ModelDirectory.writeConfig(out, configJson);
    long sourceBytes = ModelDirectory.open(in).totalWeightBytes();
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("bits", (double) settings.bits());
    metrics.put("groupSize", -1.0);
    metrics.put("quantizedTensors", (double) s.quantizedLinears());
    metrics.put("quantizedParameters", (double) s.quantizedParameters());
    metrics.put("quantizedWeightBytes", (double) s.quantizedLinearBytes());
    metrics.put("bitsPerWeight", s.bitsPerWeight());
    metrics.put(
        "quantizedModelBytes",
        (double) (sourceBytes - s.sourceLinearBytes() + s.quantizedLinearBytes()));
    metrics.put("sourceWeightBytes", (double) sourceBytes);
    metrics.put("ggufFiles", 0.0);
    metrics.put("codebookRows", (double) s.rows());
    metrics.put("codebookConvergedRows", (double) s.convergedRows());
    metrics.put("seconds", (System.nanoTime() - t0) / 1e9);
    metrics.put("sparsity", WeightSparsity.of(out).fraction());
    return StageResult.of(out, "hf-safetensors", metrics);
  }
}
