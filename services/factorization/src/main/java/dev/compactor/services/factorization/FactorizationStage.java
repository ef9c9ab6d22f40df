package dev.compactor.services.factorization;

import dev.compactor.core.factorize.Factorization;
import dev.compactor.core.factorize.FactorizationReport;
import dev.compactor.core.factorize.FactorizeSpec;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.FactorizeParams;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.StageKind;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.recipe.StepMemory;
import dev.compactor.core.share.CrossLayerSharing;
import dev.compactor.runtime.Devices;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Makes the job's model smaller and cheaper per token by replacing its decoder linears with
 * low-rank pairs: {@code svd} truncates each weight's SVD; {@code svd_llm} (the default) whitens it
 * with the Gram matrix of its inputs on the recipe's calibration text (default: the built-in
 * Europarl corpus), layer by layer on the already factorized model. The rank of each matrix comes
 * from {@code ratio} (parameters kept) or {@code energy} (spectrum share kept); {@code merge}
 * stores the products back as dense weights. Writes a Hugging Face directory, as {@code compactor
 * factorize} does ({@link Factorization}).
 */
public final class FactorizationStage implements Stage {

  /** Calibration windows when the recipe has no calibration section. */
  static final int DEFAULT_SAMPLES = StepMemory.FACTORIZE_DEFAULT_SAMPLES;

  static final int DEFAULT_SEQ_LEN = StepMemory.FACTORIZE_DEFAULT_SEQ_LEN;

  /** Seed of the calibration window offsets, as the prune stage's and the CLI's. */
  private static final long SEED = 1234;

  /** The SVDs and SVD-LLM's calibration forward run in plain Java and libtorch on the CPU. */
  @Override
  public void checkDevice(String device) {
    Devices.requireCpu(device, "factorization (SVD, SVD-LLM and its calibration)");
  }

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    StageSpec spec = StageSpec.fromJson(StageKind.FACTORIZE, ctx.request().getParamsJson());
    FactorizeParams params = (FactorizeParams) spec.params();
    ModelConfig c = ModelConfig.read(ctx.inputDir());
    // a step sent without the job-start check still gets its message before any work
    RecipeModelCheck.requireSupported(spec, c);
    RecipeModelCheck.requireMemory(spec, c, ctx.memoryBudgetBytes());
    if (params.share() != null) {
      return share(ctx, params.share().spec(c.numLayers()));
    }
    // refuses rank / rank_ratio ("not supported yet") before any work
    FactorizeSpec factorize = params.spec();
    Calibration cal = factorize.method().calibrated() ? calibration(ctx, spec) : null;
    Map<String, String> provenance = new LinkedHashMap<>();
    Map<String, Double> cleaning = new LinkedHashMap<>();
    if (cal != null) {
      provenance.put("compactor.factorize.calibration.dataset", cal.dataset());
      provenance.put("compactor.factorize.calibration.samples", Integer.toString(cal.samples()));
      provenance.put("compactor.factorize.calibration.seq_len", Integer.toString(cal.seqLen()));
    }
    ctx.progress()
        .report(
            0.05,
            factorize.method().key()
                + " with "
                + factorize.rule()
                + (cal == null ? "" : ", calibrated on " + cal.dataset()));
    FactorizationReport report =
        Factorization.run(
            factorize,
            ctx.inputDir(),
            ctx.outputDir(),
            () -> {
              try {
                Calibration.Windows w = cal.windowsAndCleaning(ctx.inputDir(), ctx::fetch, SEED);
                cleaning.putAll(w.metrics());
                return w.windows();
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
            },
            (layer, layers, done) -> {
              ctx.progress()
                  .report(
                      0.1 + 0.9 * (layer + 1) / layers,
                      String.format(
                          Locale.ROOT,
                          "factorized layer %d/%d: ranks %s",
                          layer + 1,
                          layers,
                          done.stream().map(m -> Integer.toString(m.rank())).toList()));
              // a cancelled job stops between layers; Factorization removes the partial output
              ctx.checkCancelled();
            },
            provenance);
    Map<String, Double> metrics = metrics(report);
    metrics.putAll(cleaning);
    return StageResult.of(ctx.outputDir(), "hf-safetensors", metrics);
  }

  /**
   * Cross-layer sharing ({@link CrossLayerSharing}, as {@code compactor share}): the output stores
   * each shared matrix or basis once and {@code compactor_shared} in config.json maps the layers to
   * it; {@code Checkpoints.open} serves it dense, so evaluation reads it like any checkpoint.
   * Metrics: parameters and decoder-linear parameters before and after, weight bytes, groups shared
   * and the references the config holds.
   */
  private static StageResult share(StageContext ctx, CrossLayerSharing.Spec spec)
      throws IOException {
    ctx.progress()
        .report(
            0.05,
            "cross-layer sharing: "
                + spec.form().key()
                + ", ratio "
                + spec.ratio()
                + ", groups of "
                + spec.group());
    CrossLayerSharing.Report r = CrossLayerSharing.run(spec, ctx.inputDir(), ctx.outputDir());
    ctx.checkCancelled();
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("parametersBefore", (double) r.parametersBefore());
    m.put("parametersAfter", (double) r.parametersAfter());
    m.put("linearParametersBefore", (double) r.linearParametersBefore());
    m.put("linearParametersAfter", (double) r.linearParametersAfter());
    m.put("weightBytesBefore", (double) r.bytesBefore());
    m.put("weightBytesAfter", (double) r.bytesAfter());
    m.put("sharedGroups", (double) r.groups().size());
    m.put("sharedReferences", (double) r.references());
    return StageResult.of(ctx.outputDir(), "hf-safetensors", m);
  }

  /**
   * Parameters and decoder-linear multiply-adds per token before and after, how many linears were
   * factorized out of how many, their rank and kept spectrum share (min, mean, max over the
   * factorized ones) and the calibration tokens (0 for plain SVD).
   */
  static Map<String, Double> metrics(FactorizationReport r) {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("parametersBefore", (double) r.parametersBefore());
    m.put("parametersAfter", (double) r.parametersAfter());
    m.put("linearMacsPerTokenBefore", (double) r.linearMacsBefore());
    m.put("linearMacsPerTokenAfter", (double) r.linearMacsAfter());
    m.put("linears", (double) r.matrices().size());
    m.put("factorizedLinears", (double) r.factorizedCount());
    m.put("merged", r.merged() ? 1.0 : 0.0);
    List<FactorizationReport.Matrix> low = r.matrices().stream().filter(x -> x.rank() > 0).toList();
    if (!low.isEmpty()) {
      m.put(
          "rankMin",
          (double) low.stream().mapToInt(FactorizationReport.Matrix::rank).min().orElseThrow());
      m.put(
          "rankMean",
          low.stream().mapToInt(FactorizationReport.Matrix::rank).average().orElseThrow());
      m.put(
          "rankMax",
          (double) low.stream().mapToInt(FactorizationReport.Matrix::rank).max().orElseThrow());
      m.put(
          "energyMin",
          low.stream().mapToDouble(FactorizationReport.Matrix::energy).min().orElseThrow());
      m.put(
          "energyMean",
          low.stream().mapToDouble(FactorizationReport.Matrix::energy).average().orElseThrow());
    }
    m.put("calibrationTokens", (double) r.calibrationTokens());
    return m;
  }

  private static Calibration calibration(StageContext ctx, StageSpec spec) {
    return Calibration.orDefault(
        spec.calibration(), ctx.request().getCalibrationUri(), DEFAULT_SAMPLES, DEFAULT_SEQ_LEN);
  }
}
