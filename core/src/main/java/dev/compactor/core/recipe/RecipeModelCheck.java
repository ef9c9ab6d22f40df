package dev.compactor.core.recipe;

import dev.compactor.core.model.ModelConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * The recipe problems that depend on the model, found when the job starts (the ingestion step knows
 * the model) with the model's real numbers: distillation layers the model does not have, methods
 * and exports not built for its architecture, and steps whose estimated memory ({@link StepMemory})
 * is above the worker's budget.
 */
public final class RecipeModelCheck {
  /** The budget's environment variable (bytes). */
  public static final String BUDGET_ENV = "COMPACTOR_MEMORY_BUDGET_BYTES";

  private RecipeModelCheck() {}

  /** Every problem of {@code recipe} on a model of shape {@code m}; empty when it can run. */
  public static List<RecipeProblem> check(Recipe recipe, ModelConfig m, long budgetBytes) {
    List<RecipeProblem> out = new ArrayList<>();
    for (int i = 0; i < recipe.stages().size(); i++) {
      StageSpec s = recipe.stage(i);
      String path = "stages[" + i + "]." + s.kind().recipeKey();
      shape(s, path, m, out);
      memory(s, path, m, budgetBytes).ifPresent(out::add);
    }
    return out;
  }

  /**
   * Refuses a step (as a stage does before it starts) whose estimate is above the budget.
   *
   * @throws IllegalArgumentException with the estimate and the budget
   */
  public static void requireMemory(StageSpec spec, ModelConfig m, long budgetBytes) {
    memory(spec, spec.kind().recipeKey(), m, budgetBytes)
        .ifPresent(
            p -> {
              throw new IllegalArgumentException(p.toString());
            });
  }

  private static java.util.Optional<RecipeProblem> memory(
      StageSpec s, String path, ModelConfig m, long budgetBytes) {
    long need = StepMemory.estimate(s, m);
    if (need <= budgetBytes) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(
        new RecipeProblem(
            path,
            "needs about "
                + StepMemory.human(need)
                + " (estimated for a "
                + m.numLayers()
                + "-layer, hidden "
                + m.hiddenSize()
                + ", "
                + m.parameterCount()
                + "-parameter model"
                + calibration(s)
                + "), more than this worker's memory budget of "
                + StepMemory.human(budgetBytes)
                + " ("
                + BUDGET_ENV
                + "); use fewer calibration samples or a shorter seq_len"));
  }

  private static String calibration(StageSpec s) {
    return s.calibration()
        .map(c -> " and " + c.samples() + " × " + c.seqLen() + " calibration tokens")
        .orElse("");
  }

  private static void shape(StageSpec s, String path, ModelConfig m, List<RecipeProblem> out) {
    int layers = m.numLayers();
    if (s.params() instanceof DistillParams d) {
      for (int layer : d.layers()) {
        if (layer >= layers) {
          out.add(
              new RecipeProblem(
                  path + ".layers",
                  "layer "
                      + layer
                      + " is outside the model, which has "
                      + layers
                      + " decoder layers (0.."
                      + (layers - 1)
                      + ")"));
        }
      }
      int kept = d.layers().isEmpty() ? d.keepLayers() : d.layers().size();
      if (kept >= layers) {
        out.add(
            new RecipeProblem(
                path + (d.layers().isEmpty() ? ".keep_layers" : ".layers"),
                "keeps "
                    + kept
                    + " layers of a "
                    + layers
                    + "-layer model; a student must have fewer layers than its teacher"));
      }
    }
    if (m.moe()) {
      // Prune and quantize know the experts (each compressed on its own routed tokens, the router
      // kept dense); distillation and factorization would read them as dense linears or skip them.
      String what =
          switch (s.kind()) {
            case DISTILL -> "distilling";
            case FACTORIZE -> "factorizing";
            default -> null;
          };
      if (what != null) {
        out.add(
            new RecipeProblem(
                path,
                "not supported yet: "
                    + what
                    + " "
                    + m.modelType()
                    + " (mixture-of-experts layers); prune, quantize or evaluate it"));
        return;
      }
    }
    if (m.family() == ModelConfig.Family.LLAMA) {
      // llama and mistral export as llama.cpp's llama arch, qwen2 as its qwen2 arch
      return;
    }
    boolean gpt2 = m.family() == ModelConfig.Family.GPT2;
    boolean qwen3 = m.family() == ModelConfig.Family.QWEN3;
    String model =
        m.modelType()
            + switch (m.family()) {
              case QWEN3 -> " models (safetensors and GGUF exports only so far)";
              case PHI3, MIXTRAL -> " models (safetensors export only so far)";
              default -> " models (only Llama-family decoders so far)";
            };
    if (gpt2 && s.params() instanceof PruneParams) {
      out.add(new RecipeProblem(path, "not supported yet: pruning " + model));
    }
    if (s.params() instanceof QuantizeParams q) {
      if (gpt2) {
        out.add(new RecipeProblem(path, "not supported yet: quantizing " + model));
        return;
      }
      for (QuantizeParams.ExportFormat f : q.export()) {
        if (f.container() == QuantizeParams.ExportFormat.Container.SAFETENSORS
            || qwen3 && f.container() == QuantizeParams.ExportFormat.Container.GGUF) {
          continue;
        }
        out.add(
            new RecipeProblem(
                path + ".export",
                "not supported yet: " + f.container().key() + " export of " + model));
      }
    }
  }
}
