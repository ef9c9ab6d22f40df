package dev.compactor.services.quantization;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.QuantizeParams.ExportFormat;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.recipe.StepMemory;
import dev.compactor.runtime.Devices;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Quantizes the job's model as the recipe says, with the same {@link QuantizationPipeline} as
 * {@code compactor quantize}: {@code rtn}, {@code gptq}, {@code awq}, {@code fp8} or {@code nf4},
 * any bits, group size and grid the recipe allows; {@code qat} trains the grid ({@link
 * QatQuantization}, the same run as {@code compactor qat}); {@code codebook} writes per-row
 * codebooks ({@link CodebookQuantization}, a checkpoint only Compactor loads). The artifact is a
 * Hugging Face directory holding the dequantized weights (what evaluation measures) with a {@code
 * quantization_config} and the provenance (job, recipe, settings, calibration text and hashes) in
 * config.json, plus {@code compressed-tensors/} and {@code model-<type>.gguf} files when the
 * recipe's {@code export} asks for them. GGUF files are quantized from this stage's input by ggml's
 * block quantizers, weighted by an importance matrix of the recipe's calibration text when the
 * recipe has one.
 *
 * <p>GPTQ and AWQ calibrate on the recipe's calibration text, or the built-in Europarl text with
 * {@value #DEFAULT_SAMPLES} windows of {@value #DEFAULT_SEQ_LEN} tokens when there is none. The
 * metric {@code quantizedModelBytes} is the real compressed size, which evaluation and publishing
 * report.
 */
public final class QuantizationStage implements Stage {

  /** Calibration windows when the recipe has no calibration section. */
  static final int DEFAULT_SAMPLES = StepMemory.QUANTIZE_DEFAULT_SAMPLES;

  static final int DEFAULT_SEQ_LEN = StepMemory.QUANTIZE_DEFAULT_SEQ_LEN;
  static final long SEED = 0;

  /** Where the compressed-tensors export goes inside the artifact. */
  public static final String COMPRESSED_TENSORS_DIR = "compressed-tensors";

  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The quantizers (RTN, GPTQ, AWQ, fp8, nf4, ggml's block quantizers) are plain Java on the CPU: a
   * GPU is refused rather than left idle.
   */
  @Override
  public void checkDevice(String device) {
    Devices.requireCpu(
        device,
        "quantization math (RTN, GPTQ, AWQ, fp8, nf4, codebooks, QAT training and the GGUF"
            + " block quantizers)");
  }

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    StageSpec stage = StageSpec.fromJson(StageKind.QUANTIZE, ctx.request().getParamsJson());
    QuantizeParams params = (QuantizeParams) stage.params();
    RecipeModelCheck.requireMemory(
        stage, ModelConfig.read(ctx.inputDir()), ctx.memoryBudgetBytes());
    if (params.method() == QuantizeParams.Method.QAT) {
      RecipeModelCheck.requireSupported(stage, ModelConfig.read(ctx.inputDir()));
      return QatQuantization.run(ctx, stage, params);
    }
    if (params.method() == QuantizeParams.Method.CODEBOOK) {
      RecipeModelCheck.requireSupported(stage, ModelConfig.read(ctx.inputDir()));
      return CodebookQuantization.run(ctx, stage, params);
    }
    WeightQuantization q = quantization(params);
    Path out = ctx.outputDir();
    QuantizationPipeline.Outputs outputs =
        new QuantizationPipeline.Outputs(
            out,
            wants(params, ExportFormat.Container.COMPRESSED_TENSORS)
                ? out.resolve(COMPRESSED_TENSORS_DIR)
                : null,
            ggufTypes(params),
            out);
    boolean imatrix = stage.calibration().isPresent() && !outputs.gguf().isEmpty();
    QuantizationPipeline.Calibration calibration = null;
    if (q.method().calibrated() || imatrix) {
      Calibration c =
          stage
              .calibration()
              .orElse(new Calibration(Corpus.BUILTIN_EUROPARL, DEFAULT_SAMPLES, DEFAULT_SEQ_LEN));
      ctx.progress().report(0.0, "reading calibration text " + c.dataset());
      CalibrationText text = CalibrationText.forDataset(c.dataset(), ctx::fetch);
      // source and hash stay the file's; the clean options travel in the recipe (provenance)
      text =
          new CalibrationText(
              c.clean(text.corpus(), ctx.inputDir()).corpus(), text.source(), text.sha256());
      calibration = new QuantizationPipeline.Calibration(text, c.samples(), c.seqLen(), SEED);
    }
    ObjectNode origin = JSON.createObjectNode();
    origin.put("tool", "compactor quantization service");
    origin.put("job_id", ctx.jobId());
    origin.put("step", ctx.request().getStep());
    origin.set("stage_params", JSON.readTree(ctx.request().getParamsJson()));
    origin.put("recipe", ctx.request().getRecipeYaml());
    // The input was verified against its manifest on download: reuse those hashes.
    ctx.inputManifest()
        .ifPresent(
            m -> {
              ObjectNode hashes = origin.putObject("input").putObject("sha256");
              m.files().forEach(f -> hashes.put(f.path(), f.sha256()));
            });
    ctx.progress().report(0.0, "quantizing: " + q.label() + ", exports " + params.export());
    QuantizationPipeline.Result r =
        QuantizationPipeline.run(
            new QuantizationPipeline.Request(ctx.inputDir(), q, calibration, imatrix, outputs),
            origin,
            (fraction, message) -> {
              ctx.checkCancelled();
              ctx.progress().report(fraction, message);
            });
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("bits", (double) q.bits());
    metrics.put("groupSize", (double) (q.groupSize() == 0 ? -1 : q.groupSize()));
    metrics.put("quantizedTensors", (double) r.layers().quantizedLinears());
    metrics.put("quantizedParameters", (double) r.layers().quantizedParameters());
    metrics.put("quantizedWeightBytes", (double) r.layers().quantizedLinearBytes());
    metrics.put("bitsPerWeight", r.layers().bitsPerWeight());
    metrics.put("quantizedModelBytes", (double) r.quantizedModelBytes());
    metrics.put("sourceWeightBytes", (double) r.sourceBytes());
    metrics.put("ggufFiles", (double) r.gguf().size());
    for (QuantizationPipeline.GgufFile g : r.gguf()) {
      metrics.put("ggufBytes" + g.type().name(), (double) g.bytes());
    }
    metrics.put("seconds", r.timings().get("total_s"));
    // the dequantized model's exact zeros: a pruned input must keep its sparsity through here
    metrics.put("sparsity", WeightSparsity.of(out).fraction());
    return StageResult.of(out, "hf-safetensors", metrics);
  }

  /**
   * The recipe's method, bits, group size and grid; fp8 and nf4 are symmetric whatever the recipe
   * says (their grids have no zero point).
   *
   * @throws IllegalArgumentException for a combination the quantizers cannot do
   */
  /**
   * The calibration section of {@code stage} (default: {@link #DEFAULT_SAMPLES} windows of {@link
   * #DEFAULT_SEQ_LEN} tokens of the built-in Europarl text), its text read and cleaned as the
   * section says.
   */
  record CalibrationInput(Calibration calibration, CalibrationText text, Corpus corpus) {}

  static CalibrationInput calibrationInput(StageContext ctx, StageSpec stage, Path in)
      throws IOException {
    Calibration c =
        stage
            .calibration()
            .orElse(new Calibration(Corpus.BUILTIN_EUROPARL, DEFAULT_SAMPLES, DEFAULT_SEQ_LEN));
    ctx.progress().report(0.0, "reading calibration text " + c.dataset());
    CalibrationText text = CalibrationText.forDataset(c.dataset(), ctx::fetch);
    return new CalibrationInput(c, text, c.clean(text.corpus(), in).corpus());
  }

  public static WeightQuantization quantization(QuantizeParams p) {
    WeightQuantization.Method method = WeightQuantization.Method.parse(p.method().key());
    int group = p.groupSize() < 0 ? 0 : p.groupSize();
    return new WeightQuantization(method, p.bits(), group, method.symmetricOnly() || p.symmetric());
  }

  /** The GGUF file types asked for; plain {@code gguf} is q8_0 for 8 bits and q4_k_m for 4. */
  public static List<LlamaFileType> ggufTypes(QuantizeParams p) {
    List<LlamaFileType> types = new ArrayList<>();
    for (ExportFormat f : p.export()) {
      if (f.container() == ExportFormat.Container.GGUF) {
        LlamaFileType t =
            f.ggufType() == null
                ? (p.bits() == 8 ? LlamaFileType.Q8_0 : LlamaFileType.Q4_K_M)
                : LlamaFileType.parse(f.ggufType());
        if (!types.contains(t)) {
          types.add(t);
        }
      }
    }
    return types;
  }

  private static boolean wants(QuantizeParams p, ExportFormat.Container c) {
    return p.export().stream().anyMatch(f -> f.container() == c);
  }

  /**
   * Checks a recipe's quantize stage before a job is submitted: the settings must make a valid
   * {@link WeightQuantization} and the exports must be writable for that method.
   *
   * @throws IllegalArgumentException or UnsupportedOperationException with the reason
   */
  public static void check(QuantizeParams p) {
    if (p.method() == QuantizeParams.Method.QAT) {
      QatQuantization.init(p);
      QatQuantization.gguf(p);
      return;
    }
    if (p.method() == QuantizeParams.Method.CODEBOOK) {
      CodebookQuantization.settings(p);
      if (p.export().stream().anyMatch(f -> f.container() != ExportFormat.Container.SAFETENSORS)) {
        throw new UnsupportedOperationException(
            "not supported: codebook quantization exported as "
                + p.export()
                + " (GGUF and compressed-tensors have no per-row codebook format)");
      }
      return;
    }
    WeightQuantization q = quantization(p);
    if (wants(p, ExportFormat.Container.COMPRESSED_TENSORS)) {
      QuantizationPipeline.scheme(q);
    }
    ggufTypes(p);
  }
}
