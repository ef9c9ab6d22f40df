package dev.compactor.core.recipe;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * How much one recipe may ask for, checked when a job is submitted, before anything runs: a
 * calibration of a billion samples or two billion distillation steps is refused with the limit it
 * breaks instead of running a worker out of memory. Operators raise the limits with the environment
 * variables named here.
 *
 * @param maxCalibrationSamples most calibration windows ({@value #SAMPLES_ENV})
 * @param maxSeqLen longest calibration or evaluation window in tokens ({@value #SEQ_LEN_ENV})
 * @param maxCalibrationTokens most calibration tokens in all, samples × seq_len ({@value
 *     #TOKENS_ENV})
 * @param maxDistillSteps most optimizer steps of one distill stage or QAT quantize stage ({@value
 *     #DISTILL_STEPS_ENV})
 */
public record RecipeLimits(
    int maxCalibrationSamples, int maxSeqLen, long maxCalibrationTokens, int maxDistillSteps) {

  public static final String SAMPLES_ENV = "COMPACTOR_LIMIT_CALIBRATION_SAMPLES";
  public static final String SEQ_LEN_ENV = "COMPACTOR_LIMIT_SEQ_LEN";
  public static final String TOKENS_ENV = "COMPACTOR_LIMIT_CALIBRATION_TOKENS";
  public static final String DISTILL_STEPS_ENV = "COMPACTOR_LIMIT_DISTILL_STEPS";

  /** 4,096 samples, 8,192-token windows, 4 M calibration tokens, 200,000 distill steps. */
  public static final RecipeLimits DEFAULTS = new RecipeLimits(4096, 8192, 4_000_000L, 200_000);

  public RecipeLimits {
    if (maxCalibrationSamples < 1
        || maxSeqLen < 1
        || maxCalibrationTokens < 1
        || maxDistillSteps < 1) {
      throw new IllegalArgumentException("recipe limits must be >= 1");
    }
  }

  /**
   * The defaults, each overridden by its environment variable when set.
   *
   * @param env looks up a variable, null when unset
   * @throws IllegalArgumentException naming the variable when a value is not a positive integer
   */
  public static RecipeLimits from(Function<String, String> env) {
    return new RecipeLimits(
        (int) read(env, SAMPLES_ENV, DEFAULTS.maxCalibrationSamples, Integer.MAX_VALUE),
        (int) read(env, SEQ_LEN_ENV, DEFAULTS.maxSeqLen, Integer.MAX_VALUE),
        read(env, TOKENS_ENV, DEFAULTS.maxCalibrationTokens, Long.MAX_VALUE),
        (int) read(env, DISTILL_STEPS_ENV, DEFAULTS.maxDistillSteps, Integer.MAX_VALUE));
  }

  private static long read(Function<String, String> env, String name, long dflt, long max) {
    String v = env.apply(name);
    if (v == null || v.isBlank()) {
      return dflt;
    }
    try {
      long n = Long.parseLong(v.strip());
      if (n >= 1 && n <= max) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(
        name + ": expected an integer in 1.." + max + " but found \"" + v + "\"");
  }

  /** Every limit the recipe breaks, at its path; empty when it stays within them. */
  public List<RecipeProblem> check(Recipe recipe) {
    List<RecipeProblem> out = new ArrayList<>();
    recipe
        .calibration()
        .ifPresent(
            c -> {
              if (c.samples() > maxCalibrationSamples) {
                out.add(
                    over("calibration.samples", c.samples(), maxCalibrationSamples, SAMPLES_ENV));
              }
              if (c.seqLen() > maxSeqLen) {
                out.add(over("calibration.seq_len", c.seqLen(), maxSeqLen, SEQ_LEN_ENV));
              }
              long tokens = (long) c.samples() * c.seqLen();
              if (tokens > maxCalibrationTokens) {
                out.add(
                    new RecipeProblem(
                        "calibration",
                        "samples × seq_len = "
                            + tokens
                            + " tokens is above the limit of "
                            + maxCalibrationTokens
                            + " ("
                            + TOKENS_ENV
                            + ")"));
              }
            });
    for (int i = 0; i < recipe.stages().size(); i++) {
      StageSpec s = recipe.stage(i);
      String path = "stages[" + i + "]." + s.kind().recipeKey();
      if (s.params() instanceof DistillParams d && d.steps() > maxDistillSteps) {
        out.add(over(path + ".steps", d.steps(), maxDistillSteps, DISTILL_STEPS_ENV));
      }
      // QAT trains with the distiller: the same bound on optimizer steps
      if (s.params() instanceof QuantizeParams q
          && q.qat() != null
          && q.qat().steps() > maxDistillSteps) {
        out.add(over(path + ".qat.steps", q.qat().steps(), maxDistillSteps, DISTILL_STEPS_ENV));
      }
      if (s.params() instanceof QuantizeParams q
          && q.qat() != null
          && q.qat().seqLen() > maxSeqLen) {
        out.add(over(path + ".qat.seq_len", q.qat().seqLen(), maxSeqLen, SEQ_LEN_ENV));
      }
      if (s.params() instanceof EvaluateParams e
          && e.perplexity() != null
          && e.perplexity().seqLen() > maxSeqLen) {
        out.add(
            over(path + ".perplexity.seq_len", e.perplexity().seqLen(), maxSeqLen, SEQ_LEN_ENV));
      }
    }
    return out;
  }

  private static RecipeProblem over(String path, long value, long limit, String env) {
    return new RecipeProblem(
        path, value + " is above the limit of " + limit + " (" + env + " raises it)");
  }
}
