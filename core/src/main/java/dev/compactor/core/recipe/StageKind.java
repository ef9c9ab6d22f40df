package dev.compactor.core.recipe;

import java.util.Arrays;
import java.util.Optional;

/**
 * The steps a recipe can list, each with the key used in recipe YAML and the name of the service
 * that runs it (which also names its request topic, e.g. {@code
 * compactor.stage.pruning.requested}). Ingestion is not listed here because every job starts with
 * it implicitly; see {@link #INGESTION_SERVICE}.
 */
public enum StageKind {
  PRUNE("prune", "pruning", true),
  QUANTIZE("quantize", "quantization", true),
  DISTILL("distill", "distillation", true),
  FACTORIZE("factorize", "factorization", true),
  EVALUATE("evaluate", "evaluation", false),
  PUBLISH("publish", "publishing", false);

  /** Stage and service name of the implicit first step that imports the source checkpoint. */
  public static final String INGESTION_SERVICE = "ingestion";

  private final String recipeKey;
  private final String serviceName;
  private final boolean compression;

  StageKind(String recipeKey, String serviceName, boolean compression) {
    this.recipeKey = recipeKey;
    this.serviceName = serviceName;
    this.compression = compression;
  }

  /**
   * The key that names this stage in a recipe's {@code stages:} list and in events, e.g. {@code
   * quantize}.
   */
  public String recipeKey() {
    return recipeKey;
  }

  /** The service module that runs this stage, e.g. {@code quantization}. */
  public String serviceName() {
    return serviceName;
  }

  /** True for stages that change the model's weights (and so must be evaluated before publish). */
  public boolean isCompression() {
    return compression;
  }

  /** The kind whose recipe key is {@code key}, if any. */
  public static Optional<StageKind> fromRecipeKey(String key) {
    return Arrays.stream(values()).filter(k -> k.recipeKey.equals(key)).findFirst();
  }

  /** The kind run by service {@code name}, if any (ingestion has none). */
  public static Optional<StageKind> fromServiceName(String name) {
    return Arrays.stream(values()).filter(k -> k.serviceName.equals(name)).findFirst();
  }
}
