package dev.compactor.core.recipe;

import java.util.List;

/**
 * The rules that span stages: what may follow what, what needs calibration, and whether publish's
 * gates can be decided from the evaluation before it. Each broken rule is reported at the stage
 * that breaks it.
 */
final class RecipeRules {

  private RecipeRules() {}

  static void check(
      List<RecipeParser.Entry> entries, boolean hasCalibration, List<RecipeProblem> out) {
    RecipeParser.Entry publish = null;
    RecipeParser.Entry quantize = null;
    RecipeParser.Entry prune = null;
    RecipeParser.Entry factorize = null;
    // steps whose output no later compression stage reads faithfully: the step and why (a format
    // taking the later stage's key and the step's path)
    List<java.util.Map.Entry<RecipeParser.Entry, String>> terminal = new java.util.ArrayList<>();
    for (RecipeParser.Entry e : entries) {
      if (e.kind().isCompression()) {
        for (var t : terminal) {
          out.add(
              new RecipeProblem(
                  e.path(), String.format(t.getValue(), e.kind().recipeKey(), t.getKey().path())));
        }
      }
      if (prune != null
          && prune.params() instanceof PruneParams pp
          && pp.structured() != null
          && pp.structured().widths()
              == dev.compactor.core.prune.structured.StructuredSpec.Widths.PER_LAYER
          && e.params() instanceof QuantizeParams q) {
        for (QuantizeParams.ExportFormat f : q.export()) {
          if (f.container() != QuantizeParams.ExportFormat.Container.SAFETENSORS) {
            out.add(
                new RecipeProblem(
                    e.path() + ".export",
                    "not supported yet: "
                        + f.container().key()
                        + " export of per-layer MLP widths (prune.structured.widths: per_layer at "
                        + prune.path()
                        + "): llama.cpp's and vLLM's Llama give every layer one"
                        + " intermediate_size; export safetensors"));
            break;
          }
        }
      }
      if (publish != null) {
        out.add(
            new RecipeProblem(
                e.path(),
                e.kind() == StageKind.PUBLISH
                    ? "publish is listed twice (first at " + publish.path() + ")"
                    : "comes after publish at "
                        + publish.path()
                        + "; publish must be the last stage"));
      }
      switch (e.kind()) {
        case PRUNE -> {
          if (prune != null) {
            out.add(
                new RecipeProblem(
                    e.path(),
                    "prune is listed twice (first at "
                        + prune.path()
                        + "); sparsity is the final fraction, so give it once"));
          }
          prune = prune == null ? e : prune;
          if (e.params() instanceof PruneParams p && p.moefy() != null) {
            terminal.add(
                java.util.Map.entry(
                    e,
                    "not supported yet: %s after moefication (at %s): the stages do not know the"
                        + " MoEfied routers and expert order; only evaluate and publish may follow"
                        + " moefy"));
          }
        }
        case FACTORIZE -> {
          if (factorize != null) {
            out.add(
                new RecipeProblem(
                    e.path(),
                    "factorize is listed twice (first at "
                        + factorize.path()
                        + "); give the final rank once"));
          }
          factorize = factorize == null ? e : factorize;
          if (e.params() instanceof FactorizeParams f && f.share() != null) {
            terminal.add(
                java.util.Map.entry(
                    e,
                    "not supported yet: %s after cross-layer sharing (at %s): it would read the"
                        + " shared tensors as one dense copy per layer and store them so; only"
                        + " evaluate and publish may follow factorize.share"));
          }
        }
        case QUANTIZE -> {
          if (quantize != null) {
            out.add(
                new RecipeProblem(
                    e.path(),
                    "quantize is listed twice (first at "
                        + quantize.path()
                        + "); re-quantizing quantized weights compounds the rounding error"));
          }
          quantize = quantize == null ? e : quantize;
        }
        case PUBLISH -> publish = publish == null ? e : publish;
        case EVALUATE -> checkNativeSpeed(e, quantize, out);
        case DISTILL -> {}
      }
      if (e.params() instanceof DistillParams d && d.lora() != null) {
        checkLora(e, d.lora(), quantize, factorize, out);
      } else if (e.kind().isCompression() && e.kind() != StageKind.QUANTIZE && quantize != null) {
        out.add(
            new RecipeProblem(
                e.path(),
                "would run on quantized weights (quantize at "
                    + quantize.path()
                    + "); put quantize after every other compression stage"));
      }
      checkCalibration(e, hasCalibration, out);
    }
    if (publish != null) {
      checkPublishIsGated(entries, publish, out);
    }
  }

  /**
   * Native speed runs the evaluated artifact's GGUF files, which only a quantize step with a GGUF
   * export writes (and, being the last compression step, hands on to every evaluate after it).
   */
  private static void checkNativeSpeed(
      RecipeParser.Entry e, RecipeParser.Entry quantize, List<RecipeProblem> out) {
    if (!(e.params() instanceof EvaluateParams ev) || ev.nativeSpeed() == null) {
      return;
    }
    boolean gguf =
        quantize != null
            && quantize.params() instanceof QuantizeParams q
            && q.export().stream()
                .anyMatch(f -> f.container() == QuantizeParams.ExportFormat.Container.GGUF);
    if (!gguf) {
      out.add(
          new RecipeProblem(
              e.path() + ".native_speed",
              "not supported yet: native speed of an artifact without a GGUF file (it runs the"
                  + " evaluated model's GGUF export: add gguf to a quantize step's export before"
                  + " this evaluate)"));
    }
  }

  /**
   * LoRA recovery runs on dense or pruned weights (merged factorizations included) and hands the
   * next stages merged weights; see recipes/README.md.
   */
  private static void checkLora(
      RecipeParser.Entry e,
      DistillParams.Lora lora,
      RecipeParser.Entry quantize,
      RecipeParser.Entry factorize,
      List<RecipeProblem> out) {
    if (quantize != null) {
      out.add(
          new RecipeProblem(
              e.path() + ".lora",
              "not supported yet: lora after quantize (at "
                  + quantize.path()
                  + "): an adapter over a quantized base cannot be merged without leaving the"
                  + " grid, and evaluate does not read base + adapter; put lora before quantize"));
    }
    if (factorize != null && factorize.params() instanceof FactorizeParams f && !f.merge()) {
      out.add(
          new RecipeProblem(
              e.path() + ".lora",
              "not supported yet: lora after a factorize with merge: false (at "
                  + factorize.path()
                  + "); LoRA adapts dense linears: give that factorize merge: true"));
    }
    if (!lora.merge()) {
      out.add(
          new RecipeProblem(
              e.path() + ".lora.merge",
              "not supported yet: merge: false in a pipeline (the next stages and evaluate read"
                  + " the weights, not base + adapter); with merge: true the adapter is still"
                  + " stored and published beside the merged weights. Use ./compactor lora for an"
                  + " unmerged adapter"));
    }
  }

  private static void checkCalibration(
      RecipeParser.Entry e, boolean hasCalibration, List<RecipeProblem> out) {
    if (hasCalibration || e.params() == null) {
      return;
    }
    String what = null;
    String at = e.path() + ".method";
    if (e.params() instanceof PruneParams p && p.depth() != null) {
      // layer scores are hidden-state similarities on calibration tokens
      what = "depth pruning";
      at = e.path() + ".depth";
    } else if (e.params() instanceof PruneParams p && p.experts() != null) {
      // its statistics are the routing and expert outputs on calibration tokens
      boolean merge = p.experts().method() == PruneParams.ExpertMethod.MERGE;
      what = "expert " + (merge ? "merging" : "pruning");
      at = e.path() + ".experts";
    } else if (e.params() instanceof PruneParams p && p.moefy() != null) {
      // neurons are clustered and routers trained on calibration activations
      what = "moefication";
      at = e.path() + ".moefy";
    } else if (e.params() instanceof PruneParams p && p.structured() != null) {
      // heads and channels are scored on calibration activations
      what = "structured pruning";
      at = e.path() + ".structured";
    } else if (e.params() instanceof PruneParams p
        && p.recovery() != null
        && p.method() == PruneParams.Method.MAGNITUDE) {
      // recovery distils on windows of the calibration text
      what = "recovery";
      at = e.path() + ".recovery";
    } else if (e.params() instanceof PruneParams p && p.needsCalibration()) {
      what = "method " + p.method().key();
    } else if (e.params() instanceof QuantizeParams q && q.needsCalibration()) {
      what = "method " + q.method().key();
    } else if (e.params() instanceof DistillParams) {
      what = "distillation";
    }
    if (what != null) {
      at = e.kind() == StageKind.DISTILL ? e.path() : at;
      out.add(
          new RecipeProblem(
              at,
              what
                  + " needs calibration text but the recipe has no calibration section (add"
                  + " calibration: {dataset: ..., samples: ..., seq_len: ...})"));
    }
  }

  /**
   * Publish judges the model by the last evaluate before it, so that one must see the final model.
   */
  private static void checkPublishIsGated(
      List<RecipeParser.Entry> entries, RecipeParser.Entry publish, List<RecipeProblem> out) {
    RecipeParser.Entry lastEvaluate = null;
    for (RecipeParser.Entry e : entries) {
      if (e == publish) {
        break;
      }
      if (e.kind() == StageKind.EVALUATE) {
        lastEvaluate = e;
      }
    }
    if (lastEvaluate == null) {
      out.add(
          new RecipeProblem(
              publish.path(),
              "has no evaluate before it; publish's gates need the evaluation's metrics"));
      return;
    }
    boolean afterEvaluate = false;
    for (RecipeParser.Entry e : entries) {
      if (e == publish) {
        break;
      }
      afterEvaluate |= e == lastEvaluate;
      if (afterEvaluate && e.kind().isCompression()) {
        out.add(
            new RecipeProblem(
                e.path(),
                "runs after the last evaluate ("
                    + lastEvaluate.path()
                    + "), so publish would release a model nobody evaluated; add an evaluate"
                    + " after it"));
      }
    }
    if (publish.params() instanceof PublishParams p
        && lastEvaluate.params() instanceof EvaluateParams ev) {
      PublishParams.Gates g = p.gates();
      String gates = publish.path() + ".gates.";
      if (g.maxTaskAccuracyDrop() != null && ev.tasks() == null) {
        out.add(
            new RecipeProblem(
                gates + "max_task_accuracy_drop",
                "needs task scores but " + lastEvaluate.path() + " has no tasks"));
      }
      if (g.maxPerplexityIncrease() != null && ev.perplexity() == null) {
        out.add(
            new RecipeProblem(
                gates + "max_perplexity_increase",
                "needs perplexity but " + lastEvaluate.path() + " has perplexity: false"));
      }
      if (!ev.kl()) {
        if (g.maxKlDivergence() != null) {
          out.add(
              new RecipeProblem(
                  gates + "max_kl_divergence",
                  "needs kl but " + lastEvaluate.path() + " has kl: false"));
        }
        if (g.minTop1Agreement() != null) {
          out.add(
              new RecipeProblem(
                  gates + "min_top1_agreement",
                  "needs kl (top-1 agreement is measured with it) but "
                      + lastEvaluate.path()
                      + " has kl: false"));
        }
      }
      if (g.maxEnergyPerTokenRatio() != null && !ev.energy()) {
        out.add(
            new RecipeProblem(
                gates + "max_energy_per_token_ratio",
                "needs energy but " + lastEvaluate.path() + " has no energy: true"));
      }
      if (g.minNativeDecodeSpeedup() != null && ev.nativeSpeed() == null) {
        out.add(
            new RecipeProblem(
                gates + "min_native_decode_speedup",
                "needs native speed but " + lastEvaluate.path() + " has no native_speed"));
      }
      if (g.minDecodeSpeedup() != null && !ev.latency()) {
        out.add(
            new RecipeProblem(
                gates + "min_decode_speedup",
                "needs latency but " + lastEvaluate.path() + " has latency off"));
      }
    }
  }
}
