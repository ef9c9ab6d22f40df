package dev.compactor.core.moe;

import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tiny.TinyRecipe;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The project's small mixture-of-experts reference model, {@code tiny-mixtral-v1}: a byte-level
 * Mixtral (4 layers, hidden 128, 8 SiLU experts of width 128, top-2) trained on the same Europarl
 * text, optimiser and schedule as the tiny Llama, so expert pruning and merging have a model whose
 * experts learnt something to measure on.
 */
public final class TinyMixtral {

  /** Data, optimiser, schedule and seed; {@code intermediate} is each expert's width. */
  public static final TinyRecipe RECIPE =
      new TinyRecipe(
          "tiny-mixtral-v1", 128, 128, 4, 4, 2, 256, 16, 400, 3e-3, 3e-4, 30, 0.1, 0.95, 1.0, 1234);

  /** Experts per layer. */
  public static final int EXPERTS = 8;

  /** Experts per token. */
  public static final int TOP_K = 2;

  /** Where the trained model is committed, relative to the repository root. */
  public static final String SHIPPED_DIR = "models/" + "tiny-mixtral-v1";

  private TinyMixtral() {}

  /** The Mixtral config: the recipe's Llama shape with sparse MLPs. */
  public static ModelConfig config() {
    return RECIPE
        .config()
        .with(
            "{\"architectures\":[\"MixtralForCausalLM\"],\"model_type\":\"mixtral\","
                + "\"num_local_experts\":"
                + EXPERTS
                + ",\"num_experts_per_tok\":"
                + TOP_K
                + ",\"sliding_window\":null,\"output_router_logits\":false}");
  }

  /** Trains the model into {@code out} (which must not exist). */
  public static void train(Path out, ProgressListener progress) throws IOException {
    TinyReferenceModel.train(out, RECIPE, config(), progress);
  }
}
