package dev.compactor.core.recipe;

import dev.compactor.core.model.ModelConfig;

/**
 * A step's memory before it runs: a deliberately generous estimate (fp32 everywhere, whole
 * calibration sets resident, no credit for freeing early) from the model's shape and the step's
 * settings, so a job that cannot fit is refused with the figure instead of taking a worker down. It
 * is an estimate, not a measurement: the evaluation reports each step's measured peak.
 *
 * <p>The default calibration of each stage (when the recipe has none) lives here, so the stages and
 * the estimate cannot disagree about it.
 */
public final class StepMemory {
  /** Wanda pruning's calibration when the recipe gives none. */
  public static final int PRUNE_DEFAULT_SAMPLES = 16;

  public static final int PRUNE_DEFAULT_SEQ_LEN = 128;

  /** GPTQ/AWQ's calibration when the recipe gives none. */
  public static final int QUANTIZE_DEFAULT_SAMPLES = 128;

  public static final int QUANTIZE_DEFAULT_SEQ_LEN = 512;

  /** Distillation's training text when the recipe gives none. */
  public static final int DISTILL_DEFAULT_SAMPLES = 64;

  public static final int DISTILL_DEFAULT_SEQ_LEN = 128;

  /** Most windows per distillation step. */
  public static final int DISTILL_MAX_BATCH = 8;

  /** The JVM, libtorch and the stage runtime before any model is loaded. */
  static final long BASE_BYTES = 512L << 20;

  private static final long F32 = 4;

  private StepMemory() {}

  /** Estimated peak bytes of one step on a model of shape {@code m}. */
  public static long estimate(StageSpec spec, ModelConfig m) {
    long h = m.hiddenSize();
    long inter = m.intermediateSize();
    long layers = m.numLayers();
    long vocab = m.vocabSize();
    long embed = vocab * h * F32;
    long params = m.parameterCount();
    long layerBytes =
        Math.max(0, params - vocab * h * (m.tieWordEmbeddings() ? 1 : 2)) / layers * F32;
    long widest = Math.max(h, inter);
    long bytes =
        switch (spec.kind()) {
          case PRUNE -> {
            PruneParams p = (PruneParams) spec.params();
            if (!p.needsCalibration()) {
              yield 3 * layerBytes;
            }
            long tokens = tokens(spec, PRUNE_DEFAULT_SAMPLES, PRUNE_DEFAULT_SEQ_LEN);
            long layerwise =
                layerwise(m, tokens, seqLen(spec, PRUNE_DEFAULT_SEQ_LEN), layerBytes, embed);
            if (p.method() != PruneParams.Method.SPARSEGPT) {
              yield layerwise;
            }
            // SparseGPT holds a stage's Gram matrices (every expert's with experts) like GPTQ
            yield layerwise + (m.moe() ? m.numExperts() : 1) * widest * widest * 8;
          }
          case QUANTIZE -> {
            QuantizeParams q = (QuantizeParams) spec.params();
            if (!q.needsCalibration()) {
              yield 3 * layerBytes + embed;
            }
            long tokens = tokens(spec, QUANTIZE_DEFAULT_SAMPLES, QUANTIZE_DEFAULT_SEQ_LEN);
            // one Gram matrix per group of a stage: with experts, every expert's at once
            long hessian = (m.moe() ? m.numExperts() : 1) * widest * widest * 8;
            yield layerwise(m, tokens, seqLen(spec, QUANTIZE_DEFAULT_SEQ_LEN), layerBytes, embed)
                + hessian;
          }
          case DISTILL -> {
            DistillParams d = (DistillParams) spec.params();
            long kept = d.layers().isEmpty() ? d.keepLayers() : d.layers().size();
            long student = params * F32 - (layers - kept) * layerBytes;
            long seq = seqLen(spec, DISTILL_DEFAULT_SEQ_LEN);
            long samples = samples(spec, DISTILL_DEFAULT_SAMPLES);
            long batch = Math.min(DISTILL_MAX_BATCH, samples);
            long perToken =
                (kept * (12 * h + 4 * inter + 2L * m.numHeads() * seq) + 4 * vocab + layers * h)
                    * F32;
            // teacher weights, student weights + gradients + two AdamW moments, activations
            yield params * F32 + 4 * student + batch * seq * perToken + samples * seq * 4;
          }
          case EVALUATE -> {
            EvaluateParams e = (EvaluateParams) spec.params();
            long seq =
                e.perplexity() == null ? EvaluateParams.DEFAULT_SEQ_LEN : e.perplexity().seqLen();
            long models = e.kl() ? 2 : 1;
            long kv = 2L * layers * seq * m.numKvHeads() * m.headDim() * F32;
            yield models * (params * F32 + kv + seq * (4 * vocab + 8 * h + 2 * inter) * F32);
          }
          case PUBLISH -> 0;
          case FACTORIZE -> 3 * layerBytes;
        };
    return BASE_BYTES + bytes;
  }

  /** Hidden states of every calibration token into and out of a layer, plus one layer's work. */
  private static long layerwise(ModelConfig m, long tokens, long seq, long layerBytes, long embed) {
    long h = m.hiddenSize();
    // a token runs through k experts' MLPs
    long mlps = m.moe() ? m.expertsPerToken() : 1;
    long perToken = (3 * h + 2L * mlps * m.intermediateSize() + (long) m.numHeads() * seq) * F32;
    return 3 * layerBytes + embed + tokens * perToken;
  }

  private static long samples(StageSpec spec, int dflt) {
    return spec.calibration().map(Calibration::samples).orElse(dflt);
  }

  private static long seqLen(StageSpec spec, int dflt) {
    return spec.calibration().map(Calibration::seqLen).orElse(dflt);
  }

  private static long tokens(StageSpec spec, int samples, int seqLen) {
    return samples(spec, samples) * seqLen(spec, seqLen);
  }

  /** Bytes as "1.25 GiB" / "300.0 MiB" for messages. */
  public static String human(long bytes) {
    if (bytes >= 1L << 30) {
      return String.format(java.util.Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
    return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
  }
}
