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

  /**
   * Refuses a step (as a stage does before it starts) that is not built for the model's
   * architecture or does not fit its shape.
   *
   * @throws UnsupportedOperationException with the first such problem
   */
  public static void requireSupported(StageSpec spec, ModelConfig m) {
    List<RecipeProblem> out = new ArrayList<>();
    shape(spec, spec.kind().recipeKey(), m, out);
    if (!out.isEmpty()) {
      throw new UnsupportedOperationException(out.get(0).toString());
    }
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
    if (s.params() instanceof EvaluateParams e && e.nativeSpeed() != null) {
      nativeSpeedArch(m).ifPresent(why -> out.add(new RecipeProblem(path + ".native_speed", why)));
      int positions = e.nativeSpeed().promptTokens() + e.nativeSpeed().decodeTokens();
      // the native decoder's KV cache holds at most 4096 positions (GgufCausalLM.MAX_POSITIONS)
      int context = Math.min(4096, m.maxPositions());
      if (m.slidingWindow() > 0) {
        context = Math.min(context, m.slidingWindow());
      }
      if (positions > context) {
        out.add(
            new RecipeProblem(
                path + ".native_speed",
                "prompt_tokens + decode_tokens = "
                    + positions
                    + " exceed the "
                    + context
                    + " positions the native decoder runs for this model"));
      }
    }
    if (s.params() instanceof DistillParams d && d.lora() == null) {
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
    if (s.params() instanceof PruneParams p && p.moefy() != null) {
      moefy(p.moefy(), path + ".moefy", m, out);
      return;
    }
    if (s.params() instanceof PruneParams p && p.depth() != null) {
      depth(p.depth(), path + ".depth", m, out);
      return;
    }
    if (s.params() instanceof PruneParams p && p.structured() != null) {
      try {
        dev.compactor.core.prune.structured.StructuredPruner.check(m, p.structured());
      } catch (UnsupportedOperationException | IllegalArgumentException e) {
        out.add(new RecipeProblem(path + ".structured", e.getMessage()));
      }
      return;
    }
    if (s.params() instanceof PruneParams p && p.experts() != null) {
      experts(p.experts(), path + ".experts", m, out);
      return;
    }
    if (s.params() instanceof PruneParams p
        && m.moe()
        && !p.output().equals(dev.compactor.core.prune.PruningOutput.DENSE)) {
      out.add(
          new RecipeProblem(
              path + (p.output().wbits() != 0 ? ".wbits" : ".format"),
              "not supported yet: "
                  + (p.output().wbits() != 0 ? "wbits" : p.output().format().value())
                  + " for "
                  + m.modelType()
                  + " (compressed-tensors export of mixture-of-experts layers)"));
    }
    if (s.params() instanceof FactorizeParams f && !m.moe()) {
      factorize(f, path, m, out);
      return;
    }
    if (m.moe()
        && s.params() instanceof QuantizeParams q
        && q.method() == QuantizeParams.Method.QAT) {
      // QuantizationAwareTraining fake-quantizes dense decoder linears only
      out.add(
          new RecipeProblem(
              path + ".method",
              "not supported yet: qat of "
                  + m.modelType()
                  + " (mixture-of-experts layers); quantize it with rtn or gptq"));
      return;
    }
    if (m.moe()) {
      moe(s, path, m, out);
      return;
    }
    if (m.family() == ModelConfig.Family.LLAMA) {
      // llama and mistral export as llama.cpp's llama arch, qwen2 as its qwen2 arch
      return;
    }
    boolean gpt2 = m.family() == ModelConfig.Family.GPT2;
    String model =
        m.modelType()
            + (gpt2
                ? " models (only Llama-family decoders so far)"
                : " models (safetensors and GGUF exports only so far)");
    if (gpt2 && s.params() instanceof PruneParams) {
      out.add(new RecipeProblem(path, "not supported yet: pruning " + model));
    }
    if (s.params() instanceof QuantizeParams q) {
      if (gpt2) {
        out.add(new RecipeProblem(path, "not supported yet: quantizing " + model));
        return;
      }
      if (m.family() == ModelConfig.Family.PHI3
          && q.method() != QuantizeParams.Method.QAT
          && q.export().stream()
              .anyMatch(f -> f.container() == QuantizeParams.ExportFormat.Container.GGUF)) {
        // Qwen3's importance matrix is tested against the whole-model hook; Phi-3's fused
        // attn_qkv / ffn_up importance is not
        imatrixProblem(s, path, model).ifPresent(out::add);
      }
      for (QuantizeParams.ExportFormat f : q.export()) {
        if (f.container() == QuantizeParams.ExportFormat.Container.SAFETENSORS) {
          continue;
        }
        if (f.container() == QuantizeParams.ExportFormat.Container.GGUF) {
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
   * Depth pruning removes Llama-family layers (Llama, Mistral, Qwen2/3, Phi-3) and must leave at
   * least one; mixtures of experts and GPT-2 are refused as {@link
   * dev.compactor.core.prune.depth.DepthPruner} refuses them.
   */
  /** The architectures factorization runs on, and linears the model has. */
  private static void factorize(
      FactorizeParams f, String path, ModelConfig m, List<RecipeProblem> out) {
    try {
      dev.compactor.core.factorize.Factorization.requireSupported(m);
      if (f.share() != null) {
        m.requireUniformWidths("cross-layer sharing");
        f.share().spec(m.numLayers());
      }
    } catch (UnsupportedOperationException | IllegalArgumentException e) {
      out.add(new RecipeProblem(path + (f.share() != null ? ".share" : ""), e.getMessage()));
      return;
    }
    if (f.share() != null) {
      return;
    }
    try {
      // rank / rank_ratio validate but nothing implements them: refuse the job at its start
      f.rankRule();
    } catch (UnsupportedOperationException e) {
      out.add(new RecipeProblem(path + (f.rank() > 0 ? ".rank" : ".rank_ratio"), e.getMessage()));
    }
    List<String> known = dev.compactor.core.model.internal.Layout.linears(m, 0);
    for (int i = 0; i < f.linears().size(); i++) {
      String l = f.linears().get(i);
      boolean found = known.stream().anyMatch(k -> k.equals(l) || k.endsWith("." + l));
      if (!found) {
        out.add(
            new RecipeProblem(
                path + ".linears[" + i + "]",
                "the model has no decoder linear '" + l + "'; its linears are " + known));
      }
    }
  }

  /**
   * MoEfication splits the MLPs of dense Llama-family models without MLP bias ({@link
   * dev.compactor.core.moe.Moefier#moefiedConfig} refuses the rest) into equal experts.
   */
  private static void moefy(
      PruneParams.Moefy f, String path, ModelConfig m, List<RecipeProblem> out) {
    if (m.intermediateSize() % f.experts() != 0) {
      out.add(
          new RecipeProblem(
              path + ".experts",
              f.experts()
                  + " experts do not divide the model's intermediate_size "
                  + m.intermediateSize()
                  + " into equal experts"));
      return;
    }
    try {
      dev.compactor.core.moe.Moefier.moefiedConfig(m, f.experts(), f.k());
    } catch (RuntimeException e) {
      out.add(new RecipeProblem(path, e.getMessage()));
    }
  }

  private static void depth(
      PruneParams.Depth d, String path, ModelConfig m, List<RecipeProblem> out) {
    if (m.moe() || m.family() == ModelConfig.Family.GPT2) {
      out.add(
          new RecipeProblem(
              path,
              "not supported yet: depth pruning of "
                  + m.modelType()
                  + (m.moe()
                      ? " (mixture-of-experts layers are not remapped)"
                      : " (h.N layers, n_layer)")));
    } else if (d.drop() >= m.numLayers()) {
      out.add(
          new RecipeProblem(
              path + ".drop",
              "drops "
                  + d.drop()
                  + " of a "
                  + m.numLayers()
                  + "-layer model; drop must be 1.."
                  + (m.numLayers() - 1)));
    }
  }

  /**
   * Expert pruning and merging rewrite Mixtral's experts and router only (Qwen MoE's shared experts
   * and dense layers are not written yet), and must leave at least one expert and drop at least
   * one.
   */
  private static void experts(
      PruneParams.Experts e, String path, ModelConfig m, List<RecipeProblem> out) {
    String what =
        e.method() == PruneParams.ExpertMethod.MERGE ? "expert merging" : "expert pruning";
    if (!m.moe()) {
      out.add(
          new RecipeProblem(
              path,
              "not supported: "
                  + what
                  + " of "
                  + m.modelType()
                  + ", a dense model without mixture-of-experts layers; prune it by sparsity or"
                  + " pattern"));
    } else if (e.keep() >= m.numExperts()) {
      out.add(
          new RecipeProblem(
              path + ".keep",
              "keeps "
                  + e.keep()
                  + " of the model's "
                  + m.numExperts()
                  + " experts per layer; keep must be 1.."
                  + (m.numExperts() - 1)));
    }
  }

  /**
   * A mixture-of-experts model. Mixtral: pruning and quantization know its experts (each compressed
   * on its own routed tokens, the router kept dense) and its GGUF export stacks them as llama.cpp
   * wants; compressed-tensors and a GGUF importance matrix do not know them yet. Qwen MoE (shared
   * experts, dense and sparse layers mixed): pruning and quantization the same way (the shared
   * expert on every token, its gate dense like the router), and GGUF as llama.cpp's
   * qwen2moe/qwen3moe where those graphs can compute the checkpoint. Distillation and factorization
   * would read experts as dense linears or skip them.
   */
  private static void moe(StageSpec s, String path, ModelConfig m, List<RecipeProblem> out) {
    String why = " " + m.modelType() + " (mixture-of-experts layers)";
    boolean mixtral = m.family() == ModelConfig.Family.MIXTRAL;
    String what =
        switch (s.kind()) {
          case DISTILL -> "distilling";
          case FACTORIZE -> "factorizing";
          default -> null;
        };
    if (what != null) {
      out.add(
          new RecipeProblem(
              path, "not supported yet: " + what + why + "; prune, quantize or evaluate it"));
      return;
    }
    if (!mixtral
        && s.params() instanceof QuantizeParams q
        && q.export().stream()
            .anyMatch(f -> f.container() == QuantizeParams.ExportFormat.Container.GGUF)) {
      // llama.cpp's qwen2moe / qwen3moe graphs: every layer sparse, top-k never renormalised
      // (qwen2moe) or always (qwen3moe); the exporter refuses the same before writing
      for (int i = 0; i < m.numLayers(); i++) {
        if (!m.sparseLayer(i)) {
          out.add(
              new RecipeProblem(
                  path + ".export",
                  "not supported: GGUF export of "
                      + m.modelType()
                      + " with dense layer "
                      + i
                      + " (mlp_only_layers / decoder_sparse_step); llama.cpp makes every layer"
                      + " sparse"));
          return;
        }
      }
      boolean renormalises = m.family() == ModelConfig.Family.QWEN3_MOE;
      if (m.normTopkProb() != renormalises) {
        out.add(
            new RecipeProblem(
                path + ".export",
                "not supported: GGUF export of "
                    + m.modelType()
                    + " with norm_topk_prob="
                    + m.normTopkProb()
                    + "; llama.cpp's "
                    + (renormalises ? "qwen3moe always" : "qwen2moe never")
                    + " renormalises the top-k weights"));
        return;
      }
    }
    if (s.params() instanceof QuantizeParams q) {
      if (q.export().stream()
          .anyMatch(f -> f.container() == QuantizeParams.ExportFormat.Container.GGUF)) {
        imatrixProblem(s, path, m.modelType() + " (mixture-of-experts layers)").ifPresent(out::add);
      }
      for (QuantizeParams.ExportFormat f : q.export()) {
        switch (f.container()) {
          case SAFETENSORS, GGUF -> {}
          default ->
              out.add(
                  new RecipeProblem(
                      path + ".export",
                      "not supported yet: " + f.container().key() + " export of" + why));
        }
      }
    }
  }

  /**
   * Why the native GGUF decoder cannot run this model's GGUF export, or empty when it can: it runs
   * llama.cpp's {@code llama} arch (Llama, Mistral) without experts, the arch the exporter writes
   * for {@code model_type} llama and mistral.
   */
  public static java.util.Optional<String> nativeSpeedArch(ModelConfig m) {
    String type = m.modelType();
    if ((type.equals("llama") || type.equals("mistral")) && !m.moe()) {
      return java.util.Optional.empty();
    }
    String arch =
        switch (type) {
          case "llama", "mistral", "mixtral" -> "llama with experts (" + type + ")";
          case "qwen2_moe" -> "qwen2moe";
          case "qwen3_moe" -> "qwen3moe";
          default -> type;
        };
    return java.util.Optional.of(
        "not supported yet: native speed of "
            + arch
            + " (the native GGUF decoder runs llama.cpp's llama arch: Llama and Mistral)");
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
