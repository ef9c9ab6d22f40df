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
      moe(s, path, m, out);
      return;
    }
    if (m.family() == ModelConfig.Family.LLAMA) {
      // llama and mistral export as llama.cpp's llama arch, qwen2 as its qwen2 arch
      return;
    }
    boolean ggufBuilt =
        m.family() == ModelConfig.Family.QWEN3 || m.family() == ModelConfig.Family.PHI3;
    String model =
        m.modelType()
            + (ggufBuilt
                ? " models (rtn, nf4 and fp8 to safetensors, and GGUF, only so far)"
                : " models (only Llama-family decoders so far)");
    if (s.params() instanceof PruneParams) {
      out.add(new RecipeProblem(path, "not supported yet: pruning " + model));
    }
    if (s.params() instanceof QuantizeParams q) {
      if (q.needsCalibration()) {
        out.add(
            new RecipeProblem(
                path + ".method", "not supported yet: " + q.method().key() + " on " + model));
      }
      for (QuantizeParams.ExportFormat f : q.export()) {
        if (f.container() == QuantizeParams.ExportFormat.Container.SAFETENSORS) {
          continue;
        }
        if (ggufBuilt && f.container() == QuantizeParams.ExportFormat.Container.GGUF) {
          imatrixProblem(s, path, model).ifPresent(out::add);
          continue;
        }
        out.add(
            new RecipeProblem(
                path + ".export",
                "not supported yet: " + f.container().key() + " export of " + model));
      }
    }
  }

  /**
   * A mixture-of-experts model (Mixtral): no compression stage knows the experts yet (each would
   * skip them or read them as dense linears), but a quantize stage that only writes GGUF files
   * runs: they are quantized from the original weights by the ggml block quantizers, experts
   * stacked as llama.cpp wants them.
   */
  private static void moe(StageSpec s, String path, ModelConfig m, List<RecipeProblem> out) {
    String why = " " + m.modelType() + " (mixture-of-experts layers)";
    if (s.params() instanceof QuantizeParams q
        && q.export().stream()
            .allMatch(f -> f.container() == QuantizeParams.ExportFormat.Container.GGUF)) {
      if (m.family() != ModelConfig.Family.MIXTRAL) {
        // GgufExperts has Mixtral's tensor table only (no shared experts yet)
        out.add(new RecipeProblem(path + ".export", "not supported yet: GGUF export of" + why));
        return;
      }
      imatrixProblem(s, path, m.modelType() + " (mixture-of-experts layers)").ifPresent(out::add);
      return;
    }
    String what =
        switch (s.kind()) {
          case PRUNE -> "pruning";
          case QUANTIZE -> "quantizing";
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
                  + why
                  + "; evaluate it as is"
                  + (s.kind() == StageKind.QUANTIZE && m.family() == ModelConfig.Family.MIXTRAL
                      ? " or export only GGUF"
                      : "")));
    }
  }

  /** Calibration with a GGUF export means an importance matrix, collected by the Llama forward. */
  private static java.util.Optional<RecipeProblem> imatrixProblem(
      StageSpec s, String path, String model) {
    if (s.calibration().isEmpty()) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(
        new RecipeProblem(
            path + ".export",
            "not supported yet: GGUF with an importance matrix (calibration) on " + model));
  }
}
