package dev.compactor.core.tiny;

import dev.compactor.core.io.DType;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The project's deeper reference Llama, {@code deep-llama-v1}: byte-level, 8 layers of hidden 256
 * with 8 query heads sharing 4 KV heads (so head pruning has GQA groups to respect), about 6 M
 * parameters, trained with the tiny model's data, optimiser and schedule. The 4-layer {@code
 * tiny-llama-v1} is too shallow to show what removing or merging layers does; this one is deep
 * enough for that and still trains in well under an hour on two cores. Weights ship as BF16 (12 MB
 * instead of 24); its held-out figures are measured on the BF16 file.
 */
public final class DeepReferenceModel {

  /** Data, optimiser, schedule and seed. */
  public static final TinyRecipe RECIPE =
      new TinyRecipe(
          "deep-llama-v1", 256, 704, 8, 8, 4, 256, 16, 600, 2e-3, 2e-4, 40, 0.1, 0.95, 1.0, 1234);

  /** How the weights are stored. */
  public static final DType STORAGE = DType.BF16;

  /** Where the trained model is committed, relative to the repository root. */
  public static final String SHIPPED_DIR = "models/" + "deep-llama-v1";

  /** Overrides where {@link #shipped()} looks (a directory holding the build). */
  public static final String SHIPPED_ENV = "COMPACTOR_DEEP_MODEL_DIR";

  private DeepReferenceModel() {}

  /** The recipe's Llama config, with {@code torch_dtype} naming the storage type. */
  public static ModelConfig config() {
    return RECIPE.config().with("{\"torch_dtype\":\"bfloat16\"}");
  }

  /** {@code $COMPACTOR_CACHE/deep-llama-v1}, or {@code ~/.cache/compactor/deep-llama-v1}. */
  public static Path defaultDir() {
    return TinyReferenceModel.defaultDir().resolveSibling(RECIPE.name());
  }

  /**
   * The build that ships with the repository ({@value #SHIPPED_DIR}, or {@code
   * $COMPACTOR_DEEP_MODEL_DIR}), checked against its SHA256SUMS.
   *
   * @throws IllegalStateException when no complete, intact copy is found
   */
  public static Path shipped() {
    return TinyReferenceModel.shipped(
        SHIPPED_DIR, SHIPPED_ENV, "tiny-model --model " + RECIPE.name() + " --train");
  }

  /** The hash a build of the current recipe records in its training report. */
  public static String recipeHash() throws IOException {
    return TinyReferenceModel.recipeHash(RECIPE, config());
  }

  /** Trains the model into {@code out} (which must not exist). */
  public static void train(Path out, ProgressListener progress) throws IOException {
    TinyReferenceModel.train(out, RECIPE, config(), STORAGE, progress);
  }

  /** {@code dir} holding a build of the current recipe: reused if it has one, else trained. */
  public static Path buildOrReuse(Path dir, ProgressListener progress) throws IOException {
    return TinyReferenceModel.buildOrReuse(dir, RECIPE, config(), STORAGE, progress);
  }
}
