package dev.compactor.services.ingestion;

import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeModelCheck;
import dev.compactor.core.recipe.RecipeProblem;
import dev.compactor.events.ModelIngested;
import dev.compactor.runtime.Stage;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import dev.compactor.schemas.Topics;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Step 0 of every job: takes the Hugging Face model directory the user submitted ({@code file://}
 * path or {@code s3://} prefix), checks that Compactor can work on it — a readable {@code
 * config.json} of a supported causal-LM architecture, valid safetensors whose parameter count
 * matches the config, no pickle weights — and stores it as the job's baseline artifact. The model
 * and the calibration source must be ones this worker is allowed to read ({@code
 * COMPACTOR_SOURCE_FILE_ROOTS}, {@code COMPACTOR_SOURCE_BUCKETS}); others fail the job at once.
 * Announces the model with a {@code ModelIngested} event (architecture, type, parameters, dtype,
 * size, file hashes).
 */
public final class IngestionStage implements Stage {

  /** The artifact format of an ingested model. */
  public static final String FORMAT = "hf-safetensors";

  @Override
  public StageResult run(StageContext ctx) throws Exception {
    String uri = ctx.request().getModelUri();
    // the later stages read the calibration text: refuse a forbidden one before any compute
    ctx.checkSource(ctx.request().getCalibrationUri());
    ctx.progress().report(0.0, "fetching " + uri);
    Path source = ctx.fetch(uri);
    ModelDirectory model;
    ModelConfig config;
    try {
      model = ModelDirectory.open(source);
      config = ModelConfig.fromJson(model.configJson().toString());
    } catch (CheckpointFormatException e) {
      // bad input, not an I/O fault: a retry would meet the same file
      throw new IllegalArgumentException("model " + uri + " refused: " + e.getMessage(), e);
    }
    long expected = config.parameterCount();
    if (expected != model.parameterCount()) {
      throw new IllegalArgumentException(
          "model "
              + uri
              + " refused: config.json describes "
              + expected
              + " parameters, the safetensors hold "
              + model.parameterCount());
    }
    checkRecipeFits(ctx, uri, config);
    ctx.progress().report(0.5, "validated; copying " + model.modelFiles().size() + " files");
    for (Path file : model.modelFiles()) {
      Files.copy(file, ctx.outputDir().resolve(file.getFileName().toString()));
    }
    Map<String, String> hashes = model.sha256Files();
    long size = sizeOf(model);
    String architecture = model.configJson().path("architectures").path(0).asText("");
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("parameterCount", (double) model.parameterCount());
    metrics.put("sizeBytes", (double) size);
    metrics.put("weightBytes", (double) model.totalWeightBytes());
    metrics.put("layers", (double) config.numLayers());
    metrics.put("hiddenSize", (double) config.hiddenSize());
    metrics.put("vocabSize", (double) config.vocabSize());
    return StageResult.of(ctx.outputDir(), FORMAT, metrics)
        .withEventFor(
            Topics.MODELS_INGESTED,
            ref ->
                ModelIngested.newBuilder()
                    .setJobId(ctx.jobId())
                    .setArtifact(ref)
                    .setArchitecture(architecture)
                    .setModelType(config.modelType())
                    .setParameterCount(model.parameterCount())
                    .setDtype(model.dominantDType().name())
                    .setSizeBytes(size)
                    .setFileHashes(hashes)
                    .setIngestedAtMs(System.currentTimeMillis())
                    .build());
  }

  /**
   * The recipe problems only the model reveals (distill layers it lacks, methods not built for its
   * architecture, steps that cannot fit this worker's memory), reported before any step runs.
   */
  private static void checkRecipeFits(StageContext ctx, String uri, ModelConfig config) {
    Recipe recipe = Recipe.parse(ctx.request().getRecipeYaml());
    List<RecipeProblem> problems = RecipeModelCheck.check(recipe, config, ctx.memoryBudgetBytes());
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(
          "recipe "
              + recipe.name()
              + " cannot run on "
              + uri
              + ": "
              + problems.stream().map(RecipeProblem::toString).collect(Collectors.joining("; ")));
    }
  }

  private static long sizeOf(ModelDirectory model) throws IOException {
    long total = 0;
    for (Path p : model.modelFiles()) {
      total += Files.size(p);
    }
    return total;
  }
}
