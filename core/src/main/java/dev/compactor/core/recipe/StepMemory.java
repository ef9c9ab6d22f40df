package dev.compactor.core.recipe;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.calib.LinearGroups;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

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

  /**
   * SVD-LLM factorization's calibration when the recipe gives none (as {@code compactor
   * factorize}).
   */
  public static final int FACTORIZE_DEFAULT_SAMPLES = 64;

  public static final int FACTORIZE_DEFAULT_SEQ_LEN = 256;

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
            // recovery runs after the pruning, which has freed its memory by then
            long recovery = p.recovery() == null ? 0 : recoveryBytes(m, p.recovery());
            if (!p.needsCalibration()) {
              yield Math.max(recovery, 3 * layerBytes);
            }
            long tokens = tokens(spec, PRUNE_DEFAULT_SAMPLES, PRUNE_DEFAULT_SEQ_LEN);
            if (p.moefy() != null) {
              // the whole model resident, every layer's MLP input kept (training and held-out
              // windows), one layer's activations and their clustering points at a time, and the
              // rewritten copy of the weights while the output is written
              yield 2 * params * F32 + layers * tokens * h * F32 + 3 * tokens * inter * F32;
            }
            long layerwise =
                layerwise(m, tokens, seqLen(spec, PRUNE_DEFAULT_SEQ_LEN), layerBytes, embed);
            if (p.depth() != null) {
              // the angular curve holds one more hidden state per block length
              yield Math.max(recovery, layerwise + p.depth().drop() * tokens * h * F32);
            }
            if (p.method() != PruneParams.Method.SPARSEGPT) {
              yield Math.max(recovery, layerwise);
            }
            // SparseGPT holds a stage's Gram matrices (every expert's with experts) like GPTQ
            yield Math.max(
                recovery, layerwise + (m.moe() ? m.numExperts() : 1) * widest * widest * 8);
          }
          case QUANTIZE -> {
            QuantizeParams q = (QuantizeParams) spec.params();
            if (q.qat() != null) {
              // the init (GPTQ layer by layer, or RTN) is done and freed before training starts
              long init =
                  q.qat().init() == QuantizeParams.QatInit.GPTQ
                      ? layerwise(
                              m,
                              tokens(spec, QUANTIZE_DEFAULT_SAMPLES, QUANTIZE_DEFAULT_SEQ_LEN),
                              seqLen(spec, QUANTIZE_DEFAULT_SEQ_LEN),
                              layerBytes,
                              embed)
                          + gramBytes(m, true)
                      : 3 * layerBytes + embed;
              yield Math.max(init, qatBytes(m, q.qat()));
            }
            if (q.codebook() != null && q.codebook().sensitivity().equals("fisher")) {
              // the whole model with its gradients and the Fisher sums, one window's activations
              long seq = seqLen(spec, QUANTIZE_DEFAULT_SEQ_LEN);
              long perToken =
                  ((long) m.numLayers() * (12 * h + 4 * inter + 2L * m.numHeads() * seq)
                          + 4L * vocab)
                      * F32;
              yield 3 * params * F32 + seq * perToken + 3 * layerBytes;
            }
            if (!q.needsCalibration()) {
              yield 3 * layerBytes + embed;
            }
            long tokens = tokens(spec, QUANTIZE_DEFAULT_SAMPLES, QUANTIZE_DEFAULT_SEQ_LEN);
            long hessian =
                m.family() == ModelConfig.Family.GPT2
                    ? widest * widest * 8
                    : gramBytes(m, q.method() == QuantizeParams.Method.GPTQ);
            yield layerwise(m, tokens, seqLen(spec, QUANTIZE_DEFAULT_SEQ_LEN), layerBytes, embed)
                + hessian;
          }
          case DISTILL -> {
            DistillParams d = (DistillParams) spec.params();
            boolean lora = d.lora() != null;
            long kept = lora ? layers : d.layers().isEmpty() ? d.keepLayers() : d.layers().size();
            long student = params * F32 - (layers - kept) * layerBytes;
            // LoRA: the frozen base once (no gradients or moments; the adapter is a few % of it)
            long trained = lora ? student : 4 * student;
            long seq = seqLen(spec, DISTILL_DEFAULT_SEQ_LEN);
            long samples = samples(spec, DISTILL_DEFAULT_SAMPLES);
            long batch = Math.min(lora ? d.lora().batch() : DISTILL_MAX_BATCH, samples);
            long perToken =
                (kept * (12 * h + 4 * inter + 2L * m.numHeads() * seq) + 4 * vocab + layers * h)
                    * F32;
            // teacher weights, student weights + gradients + two AdamW moments, activations
            yield params * F32 + trained + batch * seq * perToken + samples * seq * 4;
          }
          case EVALUATE -> {
            EvaluateParams e = (EvaluateParams) spec.params();
            long seq =
                e.perplexity() == null ? EvaluateParams.DEFAULT_SEQ_LEN : e.perplexity().seqLen();
            long models = e.kl() ? 2 : 1;
            long kv = 2L * layers * seq * m.numKvHeads() * m.headDim() * F32;
            long djl = models * (params * F32 + kv + seq * (4 * vocab + 8 * h + 2 * inter) * F32);
            // native speed runs after the DJL models are closed: the original as an F32 GGUF and
            // the candidate's file (at most as large) are in the heap one at a time
            yield e.nativeSpeed() == null ? djl : Math.max(djl, params * F32 + kv);
          }
          case PUBLISH -> 0;
          case FACTORIZE -> {
            FactorizeParams f = (FactorizeParams) spec.params();
            if (f.share() != null) {
              // one linear of every layer of a group at a time, its SVD workspace and the output
              yield 3 * layers * widest * h * F32 + 3 * layerBytes;
            }
            // GPT-2 and mixtures of experts are refused by the model check, not estimated
            if (!"svd_llm".equals(f.method()) || m.family() == ModelConfig.Family.GPT2 || m.moe()) {
              yield 3 * layerBytes;
            }
            // SVD-LLM calibrates layer by layer in GPTQ's true-sequential order, Gram matrices too
            long tokens = tokens(spec, FACTORIZE_DEFAULT_SAMPLES, FACTORIZE_DEFAULT_SEQ_LEN);
            yield layerwise(m, tokens, seqLen(spec, FACTORIZE_DEFAULT_SEQ_LEN), layerBytes, embed)
                + gramBytes(m, true);
          }
        };
    return BASE_BYTES + bytes;
  }

  /**
   * Recovery after pruning: the unpruned teacher, the student's weights, gradients and two AdamW
   * moments (bounded by the unpruned size), and one batch's activations kept for backward.
   */
  private static long recoveryBytes(ModelConfig m, PruneParams.Recovery r) {
    long h = m.hiddenSize();
    long seq = r.seqLen();
    long perToken =
        ((long) m.numLayers() * (12 * h + 4 * m.intermediateSize() + 2L * m.numHeads() * seq)
                + 4L * m.vocabSize())
            * F32;
    return 5 * m.parameterCount() * F32 + r.batch() * seq * perToken;
  }

  /**
   * QAT: the teacher, the student's latent weights, gradients and two AdamW moments, each forward's
   * fake-quantized copy of the linears and its gradient, and one batch's activations kept for
   * backward (the steps, one per row and group, are small beside them).
   */
  private static long qatBytes(ModelConfig m, QuantizeParams.Qat q) {
    long h = m.hiddenSize();
    long seq = Math.min(q.seqLen(), Math.max(1, m.maxPositions() - 1));
    long perToken =
        ((long) m.numLayers() * (12 * h + 4 * m.intermediateSize() + 2L * m.numHeads() * seq)
                + 4L * m.vocabSize())
            * F32;
    return 7 * m.parameterCount() * F32 + q.batch() * seq * perToken;
  }

  /** Hidden states of every calibration token into and out of a layer, plus one layer's work. */
  private static long layerwise(ModelConfig m, long tokens, long seq, long layerBytes, long embed) {
    long h = m.hiddenSize();
    // a token runs through k experts' MLPs (and Qwen2-MoE's shared expert), or a dense layer's
    long mlp = m.intermediateSize();
    if (m.moe()) {
      long sparse =
          (long) m.expertsPerToken() * m.expertIntermediateSize()
              + m.sharedExpertIntermediateSize();
      boolean allSparse = true;
      for (int i = 0; i < m.numLayers(); i++) {
        allSparse &= m.sparseLayer(i);
      }
      mlp = allSparse ? sparse : Math.max(mlp, sparse);
    }
    long perToken = (3 * h + 2L * mlp + (long) m.numHeads() * seq) * F32;
    return 3 * layerBytes + embed + tokens * perToken;
  }

  /**
   * The Gram matrices ({@code cols^2} doubles each) one calibration stage holds at once, in the
   * layer and stage that hold the most: one per group of linears sharing an input ({@link
   * LinearGroups}), so with experts every expert's of the stage; plus the Hessian and its inverse
   * of the widest linear being quantized. GPTQ runs {@link LinearGroups#trueSequential}, AWQ one
   * stage of the whole layer. Dense and sparse layers are each alike, so one of each is measured.
   */
  static long gramBytes(ModelConfig m, boolean trueSequential) {
    long most = 0;
    long widestInput = 0;
    boolean[] seen = new boolean[2];
    for (int i = 0; i < m.numLayers(); i++) {
      int kind = m.moe() && m.sparseLayer(i) ? 1 : 0;
      if (seen[kind]) {
        continue;
      }
      seen[kind] = true;
      List<LinearGroups.Group> groups = LinearGroups.of(m, i);
      List<List<String>> stages =
          trueSequential ? LinearGroups.trueSequential(m, i) : LinearGroups.oneStage(m, i);
      for (List<String> stage : stages) {
        Set<String> in = new HashSet<>(stage);
        long bytes = 0;
        for (LinearGroups.Group g : groups) {
          if (in.contains(g.linears().get(0))) {
            long cols = LinearGroups.shape(m, i, g.linears().get(0))[1];
            bytes += cols * cols * 8;
            widestInput = Math.max(widestInput, cols);
          }
        }
        most = Math.max(most, bytes);
      }
    }
    return most + 2 * widestInput * widestInput * 8;
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
