package dev.compactor.core.recipe;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.depth.DepthMethod;
import java.util.List;
import org.junit.jupiter.api.Test;

/** One test per validation rule: each names the path of the problem and what was wrong. */
class RecipeValidationTest {

  private static final String CAL =
      "calibration: { dataset: s3://d/c.txt, samples: 8, seq_len: 64 }\n";

  /** Validates a recipe whose stages are the given YAML list items. */
  private static List<RecipeProblem> problems(String stages, boolean withCalibration) {
    String yaml = "name: t\nstages:\n" + stages + (withCalibration ? CAL : "");
    List<RecipeProblem> problems = Recipe.validate(yaml);
    assertTrue(!problems.isEmpty(), "expected problems for:\n" + yaml);
    return problems;
  }

  private static void assertOnlyProblem(
      List<RecipeProblem> problems, String path, String messagePart) {
    assertEquals(1, problems.size(), "problems: " + problems);
    assertProblem(problems, path, messagePart);
  }

  private static void assertProblem(List<RecipeProblem> problems, String path, String messagePart) {
    assertTrue(
        problems.stream().anyMatch(p -> p.path().equals(path) && p.message().contains(messagePart)),
        "expected a problem at " + path + " containing '" + messagePart + "' in " + problems);
  }

  @Test
  void notYaml() {
    assertProblem(Recipe.validate("name: [unclosed"), "", "not valid YAML");
    assertProblem(Recipe.validate("   "), "", "empty");
    assertProblem(Recipe.validate("- a list"), "", "expected a mapping");
  }

  @Test
  void duplicateKeysAreRejected() {
    assertProblem(
        Recipe.validate("name: a\nname: b\nstages:\n  - evaluate: {}\n"), "", "Duplicate field");
  }

  @Test
  void topLevelShape() {
    List<RecipeProblem> p = Recipe.validate("colour: red\nstages: []\n");
    assertProblem(p, "colour", "unknown parameter");
    assertProblem(p, "name", "missing");
    assertProblem(p, "stages", "non-empty list");
    assertProblem(
        Recipe.validate("name: 'bad name!'\nstages:\n  - evaluate:\n"), "name", "bad name!");
  }

  @Test
  void stageEntryMustHaveExactlyOneName() {
    assertOnlyProblem(
        problems("  - { prune: { sparsity: 0.5 }, evaluate: {} }\n", false),
        "stages[0]",
        "exactly one stage name");
  }

  @Test
  void unknownStage() {
    assertOnlyProblem(problems("  - shrink: {}\n", false), "stages[0].shrink", "unknown stage");
  }

  @Test
  void ingestionMustNotBeListed() {
    assertOnlyProblem(
        problems("  - ingestion: {}\n  - evaluate:\n", false),
        "stages[0].ingestion",
        "ingestion is implicit");
  }

  @Test
  void unknownParameterNamesTheAcceptedOnes() {
    assertOnlyProblem(
        problems("  - quantize: { method: rtn, bits: 4, colour: red }\n", false),
        "stages[0].quantize.colour",
        "quantize accepts method, bits, group_size, symmetric, export, qat");
  }

  @Test
  void illTypedParameters() {
    List<RecipeProblem> p =
        problems(
            "  - prune: { method: random, sparsity: 1.0 }\n"
                + "  - quantize: { method: rtn, bits: 5, group_size: 100, symmetric: maybe,"
                + " export: [onnx] }\n",
            false);
    assertProblem(
        p, "stages[0].prune.method", "one of magnitude, wanda, sparsegpt but found \"random\"");
    assertProblem(p, "stages[0].prune.sparsity", "a number in (0, 1) but found 1.0");
    assertProblem(p, "stages[1].quantize.bits", "one of 2, 3, 4, 8 but found 5");
    assertProblem(p, "stages[1].quantize.group_size", "one of -1, 32, 64, 128 but found 100");
    assertProblem(p, "stages[1].quantize.symmetric", "true or false");
    assertProblem(p, "stages[1].quantize.export[0]", "gguf:<");
    assertEquals(6, p.size(), "every problem is listed: " + p);
  }

  @Test
  void missingRequiredParameter() {
    assertOnlyProblem(
        problems("  - prune: { method: magnitude }\n", false),
        "stages[0].prune.sparsity",
        "missing");
    assertOnlyProblem(
        problems("  - quantize: {}\n", false), "stages[0].quantize.method", "missing");
  }

  @Test
  void expertParameters() {
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 6, method: merge }, sparsity: 0.5 }\n", true),
        "stages[0].prune",
        "give one of sparsity, pattern and experts");
    assertOnlyProblem(
        problems(
            "  - prune: { experts: { keep: 6, method: frequency }, pattern: \"2:4\" }\n", true),
        "stages[0].prune",
        "give one of sparsity, pattern and experts");
    assertOnlyProblem(
        problems("  - prune: { method: wanda, experts: { keep: 6, method: frequency } }\n", true),
        "stages[0].prune.method",
        "with experts give experts.method (frequency, weighted_norm or merge)");
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 0, method: frequency } }\n", true),
        "stages[0].prune.experts.keep",
        "an integer >= 1 but found 0");
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 2, method: random } }\n", true),
        "stages[0].prune.experts.method",
        "one of frequency, weighted_norm, merge but found \"random\"");
    assertOnlyProblem(
        problems("  - prune: { experts: { method: merge } }\n", true),
        "stages[0].prune.experts.keep",
        "missing; experts needs keep");
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 2, method: merge, by: cosine } }\n", true),
        "stages[0].prune.experts.by",
        "unknown parameter; experts accepts keep, method");
    assertOnlyProblem(
        problems("  - prune: { experts: 6 }\n", true), "stages[0].prune.experts", "a mapping");
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 2, method: merge } }\n", false),
        "stages[0].prune.experts",
        "expert merging needs calibration text but the recipe has no calibration section");
    assertOnlyProblem(
        problems("  - prune: { experts: { keep: 2, method: weighted_norm } }\n", false),
        "stages[0].prune.experts",
        "expert pruning needs calibration text");
  }

  @Test
  void depthParameters() {
    assertOnlyProblem(
        problems("  - prune: { depth: { drop: 2 }, sparsity: 0.5 }\n", true),
        "stages[0].prune.sparsity",
        "depth removes whole layers and takes no sparsity");
    assertOnlyProblem(
        problems("  - prune: { method: wanda, depth: { drop: 2 } }\n", true),
        "stages[0].prune.method",
        "give depth.method (block_influence or angular)");
    assertOnlyProblem(
        problems("  - prune: { depth: { drop: 0 } }\n", true),
        "stages[0].prune.depth.drop",
        "an integer >= 1 but found 0");
    assertOnlyProblem(
        problems("  - prune: { depth: { drop: 1, method: taylor } }\n", true),
        "stages[0].prune.depth.method",
        "one of block_influence, angular but found \"taylor\"");
    assertOnlyProblem(
        problems("  - prune: { depth: { drop: 1 } }\n", false),
        "stages[0].prune.depth",
        "depth pruning needs calibration text");
    Recipe r =
        Recipe.parse(
            "name: d\nstages:\n  - prune: { depth: { drop: 2, method: angular } }\n"
                + "calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n");
    PruneParams p = (PruneParams) r.stage(0).params();
    assertEquals(new PruneParams.Depth(2, DepthMethod.ANGULAR), p.depth());
    assertEquals("{\"depth\":{\"drop\":2,\"method\":\"angular\"}}", p.toJson().toString());
    assertTrue(p.needsCalibration());
    PruneParams byDefault =
        (PruneParams)
            Recipe.parse("name: d\nstages:\n  - prune: { depth: { drop: 1 } }\n" + CAL)
                .stage(0)
                .params();
    assertEquals(DepthMethod.BLOCK_INFLUENCE, byDefault.depth().method());
    ModelConfig four = ModelConfig.llama(1024, 64, 128, 4, 4, 4, 256);
    assertTrue(RecipeModelCheck.check(r, four, Long.MAX_VALUE).isEmpty());
    Recipe all =
        Recipe.parse(
            "name: d\nstages:\n  - prune: { depth: { drop: 4 } }\n"
                + "calibration: { dataset: builtin:europarl, samples: 4, seq_len: 32 }\n");
    assertEquals(
        List.of("stages[0].prune.depth.drop: drops 4 of a 4-layer model; drop must be 1..3"),
        RecipeModelCheck.check(all, four, Long.MAX_VALUE).stream()
            .map(RecipeProblem::toString)
            .toList());
    ModelConfig mixtral =
        four.with(
            "{\"model_type\":\"mixtral\",\"architectures\":[\"MixtralForCausalLM\"],"
                + "\"num_local_experts\":4,\"num_experts_per_tok\":2}");
    assertTrue(
        RecipeModelCheck.check(r, mixtral, Long.MAX_VALUE).stream()
            .anyMatch(x -> x.toString().contains("not supported yet: depth pruning of mixtral")),
        RecipeModelCheck.check(r, mixtral, Long.MAX_VALUE).toString());
  }

  @Test
  void structuredParameters() {
    assertOnlyProblem(
        problems("  - prune: { structured: { heads: 0.5 }, sparsity: 0.5 }\n", true),
        "stages[0].prune",
        "structured removes whole heads and channels; give it alone");
    assertOnlyProblem(
        problems("  - prune: { structured: { heads: 0.5, widths: per_layer } }\n", true),
        "stages[0].prune.structured.widths",
        "per_layer spreads the removed MLP channels over the layers and needs channels > 0");
    assertOnlyProblem(
        problems(
            "  - prune: { structured: { channels: 0.25, widths: per_layer } }\n"
                + "  - quantize: { method: rtn, bits: 4, export: [safetensors, gguf] }\n",
            true),
        "stages[1].quantize.export",
        "not supported yet: gguf export of per-layer MLP widths");
    assertEquals(
        List.of(),
        Recipe.validate(
            "name: t\nstages:\n  - prune: { structured: { channels: 0.25, widths: per_layer } }\n"
                + "  - quantize: { method: rtn, bits: 4, export: [safetensors] }\n"
                + CAL));
    assertOnlyProblem(
        problems("  - prune: { structured: { compensate: true } }\n", true),
        "stages[0].prune.structured",
        "removes nothing");
    assertOnlyProblem(
        problems("  - prune: { structured: { heads: 1.0 } }\n", true),
        "stages[0].prune.structured.heads",
        "[0, 1)");
    assertOnlyProblem(
        problems("  - prune: { structured: { channels: 0.2, importance: wanda } }\n", true),
        "stages[0].prune.structured.importance",
        "one of activation, fluctuation");
    assertOnlyProblem(
        problems("  - prune: { structured: { channels: 0.2 } }\n", false),
        "stages[0].prune.structured",
        "structured pruning needs calibration text");
  }

  @Test
  void distillParameters() {
    assertOnlyProblem(
        problems("  - distill: { temperature: 2 }\n", true), "stages[0].distill", "layers");
    assertOnlyProblem(
        problems("  - distill: { layers: [0, 1], keep_layers: 2 }\n", true),
        "stages[0].distill",
        "not both");
    assertOnlyProblem(
        problems("  - distill: { layers: [2, 1] }\n", true),
        "stages[0].distill.layers[1]",
        "strictly ascending");
    List<RecipeProblem> p =
        problems(
            "  - distill: { layers: [-1], temperature: 0, alpha: 1.5, steps: 0, lr: -1 }\n", true);
    assertProblem(p, "stages[0].distill.layers[0]", "an integer >= 0");
    assertProblem(p, "stages[0].distill.temperature", "(0, inf)");
    assertProblem(p, "stages[0].distill.alpha", "[0, 1]");
    assertProblem(p, "stages[0].distill.steps", "an integer >= 1");
    assertProblem(p, "stages[0].distill.lr", "(0, inf)");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, steps: 99999999999 }\n", true),
        "stages[0].distill.steps",
        "an integer >= 1 but found 99999999999");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, steps: 10, checkpoint_every: 50 }\n", true),
        "stages[0].distill.checkpoint_every",
        "larger than steps");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, dtype: fp8 }\n", true),
        "stages[0].distill.dtype",
        "one of f32, f16, bf16");
  }

  @Test
  void distillKeepsTheInputDtypeUnlessTheRecipeSaysOtherwise() {
    DistillParams keep =
        (DistillParams) StageSpec.fromJson(StageKind.DISTILL, "{\"keep_layers\":2}").params();
    assertEquals(DType.BF16, keep.storeAs(DType.BF16));
    assertEquals(DType.F16, keep.storeAs(DType.F16));
    assertEquals(DType.F32, keep.storeAs(DType.F32));
    DistillParams f16 =
        (DistillParams)
            StageSpec.fromJson(StageKind.DISTILL, "{\"keep_layers\":2,\"dtype\":\"f16\"}").params();
    assertEquals(DType.F16, f16.storeAs(DType.BF16));
    assertEquals("f16", f16.toJson().get("dtype").asText());
  }

  @Test
  void distillTakesAHiddenLossOrATeacherTopK() {
    DistillParams hidden =
        (DistillParams)
            StageSpec.fromJson(
                    StageKind.DISTILL,
                    "{\"keep_layers\":2,\"hidden_loss\":\"cosine\",\"hidden_weight\":0.5}")
                .params();
    assertEquals(new DistillParams.Depth("cosine", 0.5, 0), hidden.depth());
    assertEquals("cosine", hidden.toJson().get("hidden_loss").asText());
    DistillParams topk =
        (DistillParams)
            StageSpec.fromJson(StageKind.DISTILL, "{\"keep_layers\":2,\"teacher_topk\":64}")
                .params();
    assertEquals(64, topk.depth().teacherTopk());
    assertEquals(64, topk.toJson().get("teacher_topk").asInt());
    assertEquals(
        DistillParams.Depth.NONE,
        ((DistillParams) StageSpec.fromJson(StageKind.DISTILL, "{\"keep_layers\":2}").params())
            .depth());
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, hidden_loss: l1 }\n", true),
        "stages[0].distill.hidden_loss",
        "one of mse, cosine");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, hidden_weight: 2 }\n", true),
        "stages[0].distill.hidden_weight",
        "needs hidden_loss");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, hidden_loss: mse, teacher_topk: 8 }\n", true),
        "stages[0].distill.teacher_topk",
        "not supported yet");
    assertOnlyProblem(
        problems("  - distill: { keep_layers: 2, teacher_topk: 0 }\n", true),
        "stages[0].distill.teacher_topk",
        "an integer >= 1");
  }

  @Test
  void factorizeNeedsExactlyOneRankRule() {
    assertOnlyProblem(problems("  - factorize: {}\n", false), "stages[0].factorize", "rank");
    assertOnlyProblem(
        problems("  - factorize: { rank: 8, rank_ratio: 0.5 }\n", false),
        "stages[0].factorize",
        "not rank and rank_ratio");
    assertOnlyProblem(
        problems("  - factorize: { ratio: 0.5, energy: 0.9 }\n", false),
        "stages[0].factorize",
        "not ratio and energy");
  }

  @Test
  void evaluateParameters() {
    assertOnlyProblem(
        problems("  - evaluate: { perplexity: { seq_len: 64, stride: 128 } }\n", false),
        "stages[0].evaluate.perplexity.stride",
        "larger than seq_len");
    assertOnlyProblem(
        problems("  - evaluate: { perplexity: { window: 64 } }\n", false),
        "stages[0].evaluate.perplexity.window",
        "perplexity accepts seq_len, stride");
    assertOnlyProblem(
        problems("  - evaluate: { perplexity: 7 }\n", false),
        "stages[0].evaluate.perplexity",
        "true or false or a mapping");
    assertOnlyProblem(
        problems("  - evaluate: { perplexity: false, kl: false, latency: false }\n", false),
        "stages[0].evaluate",
        "measures nothing");
  }

  @Test
  void publishGatesAreTyped() {
    List<RecipeProblem> p =
        problems(
            "  - evaluate:\n  - publish: { gates: { min_top1_agreement: 1.5, max_size_ratio: 0,"
                + " max_accuracy_drop: 1 } }\n",
            false);
    assertProblem(p, "stages[1].publish.gates.min_top1_agreement", "[0, 1]");
    assertProblem(p, "stages[1].publish.gates.max_size_ratio", "(0, inf)");
    assertProblem(p, "stages[1].publish.gates.max_accuracy_drop", "unknown parameter");
  }

  @Test
  void publishWithoutEvaluate() {
    assertOnlyProblem(
        problems("  - prune: { sparsity: 0.5 }\n  - publish: {}\n", false),
        "stages[1].publish",
        "no evaluate before it");
  }

  @Test
  void stagesAfterPublish() {
    assertOnlyProblem(
        problems("  - evaluate:\n  - publish: {}\n  - evaluate:\n", false),
        "stages[2].evaluate",
        "publish must be the last stage");
  }

  @Test
  void publishListedTwice() {
    assertOnlyProblem(
        problems("  - evaluate:\n  - publish: {}\n  - publish: {}\n", false),
        "stages[2].publish",
        "listed twice");
  }

  @Test
  void compressionAfterTheLastEvaluateIsNotGated() {
    assertOnlyProblem(
        problems(
            "  - prune: { sparsity: 0.5 }\n  - evaluate:\n  - quantize: { method: rtn }\n"
                + "  - publish: {}\n",
            false),
        "stages[2].quantize",
        "runs after the last evaluate (stages[1].evaluate)");
  }

  @Test
  void dataAwareMethodsNeedCalibration() {
    List<RecipeProblem> p =
        problems(
            "  - prune: { method: wanda, sparsity: 0.5 }\n  - distill: { keep_layers: 2 }\n"
                + "  - quantize: { method: gptq, bits: 4 }\n",
            false);
    assertProblem(p, "stages[0].prune.method", "method wanda needs calibration");
    assertProblem(p, "stages[1].distill", "distillation needs calibration");
    assertProblem(p, "stages[2].quantize.method", "method gptq needs calibration");
    assertEquals(3, p.size(), "problems: " + p);
    assertOnlyProblem(
        problems("  - quantize: { method: awq }\n", false),
        "stages[0].quantize.method",
        "method awq needs calibration");
    assertTrue(
        Recipe.validate("name: t\nstages:\n  - quantize: { method: awq }\n" + CAL).isEmpty());
  }

  @Test
  void calibrationShape() {
    List<RecipeProblem> p =
        Recipe.validate(
            "name: t\nstages:\n  - evaluate:\ncalibration: { dataset: '', samples: 0, rows: 1 }\n");
    assertProblem(p, "calibration.dataset", "non-empty string");
    assertProblem(p, "calibration.samples", "an integer >= 1");
    assertProblem(p, "calibration.seq_len", "missing");
    assertProblem(p, "calibration.rows", "unknown parameter");
    assertEquals(4, p.size(), "problems: " + p);
  }

  @Test
  void codebookWithItsFisherDefaultNeedsCalibrationButUniformDoesNot() {
    assertOnlyProblem(
        problems("  - quantize: { method: codebook }\n", false),
        "stages[0].quantize.method",
        "method codebook needs calibration text");
    assertEquals(
        List.of(),
        Recipe.validate(
            "name: t\nstages:\n  - quantize: { method: codebook, codebook: { sensitivity: uniform"
                + " } }\n"));
  }

  @Test
  void fp8WithBits4AndOtherFormatMismatches() {
    assertOnlyProblem(
        problems("  - quantize: { method: fp8, bits: 4 }\n", false),
        "stages[0].quantize.bits",
        "fp8 is an 8-bit format");
    assertOnlyProblem(
        problems("  - quantize: { method: nf4, bits: 8 }\n", false),
        "stages[0].quantize.bits",
        "nf4 is a 4-bit format");
    assertOnlyProblem(
        problems("  - quantize: { method: fp8, group_size: 128 }\n", false),
        "stages[0].quantize.group_size",
        "fp8 keeps one scale per output channel");
    assertOnlyProblem(
        problems(
            "  - quantize: { method: fp8, export: [safetensors, compressed-tensors] }\n", false),
        "stages[0].quantize.export[1]",
        "compressed-tensors stores integer grids");
    assertOnlyProblem(
        problems("  - quantize: { method: nf4, group_size: -1 }\n", false),
        "stages[0].quantize.group_size",
        "nf4 stores absmax blocks");
    assertOnlyProblem(
        problems("  - quantize: { method: nf4, symmetric: false }\n", false),
        "stages[0].quantize.symmetric",
        "nf4 has a symmetric grid");
    assertEquals(
        List.of(),
        Recipe.validate(
            "name: t\nstages:\n"
                + "  - quantize: { method: rtn, bits: 4, export: [\"gguf:q8_0\", \"gguf:q6_k\"] }\n"),
        "gguf types are independent of the method's bits: the files are quantized from the input");
    assertOnlyProblem(
        problems("  - quantize: { method: awq, bits: 8 }\n", true),
        "stages[0].quantize.bits",
        "awq supports bits 4 only");
  }

  @Test
  void stagesListedTwiceWhereThatMakesNoSense() {
    assertOnlyProblem(
        problems("  - quantize: { method: rtn }\n  - quantize: { method: rtn, bits: 8 }\n", false),
        "stages[1].quantize",
        "quantize is listed twice");
    assertOnlyProblem(
        problems("  - prune: { sparsity: 0.2 }\n  - prune: { sparsity: 0.4 }\n", false),
        "stages[1].prune",
        "prune is listed twice");
    assertOnlyProblem(
        problems("  - factorize: { rank: 4 }\n  - factorize: { rank: 2 }\n", false),
        "stages[1].factorize",
        "factorize is listed twice");
    assertTrue(
        Recipe.validate(
                "name: t\nstages:\n  - evaluate:\n  - distill: { keep_layers: 1 }\n"
                    + "  - distill: { keep_layers: 1 }\n  - evaluate:\n"
                    + CAL)
            .isEmpty(),
        "evaluate and distill may repeat");
  }

  @Test
  void compressionAfterQuantizeWouldRunOnQuantizedWeights() {
    assertOnlyProblem(
        problems("  - quantize: { method: rtn }\n  - prune: { sparsity: 0.5 }\n", false),
        "stages[1].prune",
        "would run on quantized weights");
  }

  @Test
  void gatesNeedTheMetricsTheEvaluationMeasures() {
    List<RecipeProblem> p =
        problems(
            "  - evaluate: { perplexity: false, kl: false, latency: true }\n"
                + "  - publish: { gates: { max_perplexity_increase: 0.1, max_kl_divergence: 0.2,"
                + " min_top1_agreement: 0.9, max_size_ratio: 0.5 } }\n",
            false);
    assertProblem(p, "stages[1].publish.gates.max_perplexity_increase", "perplexity: false");
    assertProblem(p, "stages[1].publish.gates.max_kl_divergence", "kl: false");
    assertProblem(p, "stages[1].publish.gates.min_top1_agreement", "kl: false");
    assertEquals(3, p.size(), "max_size_ratio is always measurable: " + p);
  }

  @Test
  void exceptionMessageListsEveryProblem() {
    InvalidRecipeException e =
        assertThrows(
            InvalidRecipeException.class,
            () -> Recipe.parse("name: t\nstages:\n  - prune: { sparsity: 2 }\n  - shrink: {}\n"));
    assertEquals(2, e.problems().size());
    assertTrue(e.getMessage().contains("stages[0].prune.sparsity"), e.getMessage());
    assertTrue(e.getMessage().contains("stages[1].shrink"), e.getMessage());
  }

  @Test
  void pruningRecoveryIsParsedAndItsImpossibleCombinationsAreNamed() {
    Recipe r =
        Recipe.parse(
            "name: r\nstages:\n  - prune: { method: wanda, sparsity: 0.5,"
                + " recovery: { steps: 50, lr: 0.0002 } }\n"
                + CAL);
    PruneParams p = (PruneParams) r.stage(0).params();
    assertEquals(new PruneParams.Recovery(50, 2e-4, 4, 1, 256, 128), p.recovery());
    assertEquals(50, p.recovery().perRound().steps());
    assertEquals(
        p, StageSchemas.build(StageKind.PRUNE, p.toJson()), "toJson round-trips: " + p.toJson());
    PruneParams iterative =
        (PruneParams)
            Recipe.parse(
                    "name: r\nstages:\n  - prune: { method: magnitude, sparsity: 0.6,"
                        + " recovery: { steps: 90, rounds: 3 } }\n"
                        + CAL)
                .stage(0)
                .params();
    assertEquals(30, iterative.recovery().perRound().steps());

    assertOnlyProblem(
        problems(
            "  - prune: { experts: { keep: 2, method: frequency }, recovery: { steps: 5 } }\n",
            true),
        "stages[0].prune.recovery",
        "not supported yet: recovery after expert pruning");
    assertOnlyProblem(
        problems(
            "  - prune: { method: sparsegpt, pattern: \"2:4\", recovery: { steps: 8, rounds: 2 }"
                + " }\n",
            true),
        "stages[0].prune.recovery",
        "needs unstructured sparsity");
    assertOnlyProblem(
        problems(
            "  - prune: { method: sparsegpt, sparsity: 0.5, wbits: 4, recovery: { steps: 8 } }\n",
            true),
        "stages[0].prune.recovery",
        "not supported yet: recovery with a sparse format or joint quantization");
    assertOnlyProblem(
        problems(
            "  - prune: { method: magnitude, sparsity: 0.5, recovery: { steps: 8 } }\n", false),
        "stages[0].prune.recovery",
        "recovery needs calibration text");
    assertProblem(
        problems(
            "  - prune: { method: magnitude, sparsity: 0.5, recovery: { steps: 2, rounds: 3 } }\n",
            true),
        "stages[0].prune.recovery",
        "must not exceed steps");
  }

  @Test
  void evaluationTasksAndTheirGate() {
    assertEquals(dev.compactor.core.tasks.BuiltinTasks.NAMES, EvaluateParams.Tasks.BUILTIN);
    Recipe r =
        Recipe.parse(
            "name: t\nstages:\n  - prune: { method: magnitude, sparsity: 0.3 }\n"
                + "  - evaluate: { tasks: { builtin: [europarl-next-sentence], limit: 50 } }\n"
                + "  - publish: { gates: { max_task_accuracy_drop: 0.05 } }\n");
    EvaluateParams ev = (EvaluateParams) r.stage(1).params();
    assertEquals(
        new EvaluateParams.Tasks(List.of("europarl-next-sentence"), List.of(), 50), ev.tasks());
    assertEquals(ev, StageSchemas.build(StageKind.EVALUATE, ev.toJson()));
    assertEquals(0.05, ((PublishParams) r.stage(2).params()).gates().maxTaskAccuracyDrop());
    assertOnlyProblem(
        problems(
            "  - prune: { method: magnitude, sparsity: 0.3 }\n  - evaluate: {}\n"
                + "  - publish: { gates: { max_task_accuracy_drop: 0.05 } }\n",
            false),
        "stages[2].publish.gates.max_task_accuracy_drop",
        "needs task scores");
    assertProblem(
        problems("  - evaluate: { tasks: { builtin: [hellaswag] } }\n", false),
        "stages[0].evaluate.tasks.builtin[0]",
        "");
    assertOnlyProblem(
        problems("  - evaluate: { tasks: { limit: 5 } }\n", false),
        "stages[0].evaluate.tasks",
        "names no task");
  }
}
