package dev.compactor.core.prune;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.ActivationObserver;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import dev.compactor.core.quant.calib.ExpertTokens;
import dev.compactor.core.quant.calib.LinearGroups;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Wanda pruning (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language
 * Models"): a weight's importance is |W_ij| * ||X_j||_2, where X_j is input feature j of that
 * linear over the calibration tokens; within each output row the least important weights are set to
 * zero. Weights that multiply large activations survive even when small, which magnitude pruning
 * cannot see.
 *
 * <p>Calibration runs first: the recipe's calibration windows go through the dense model, and an
 * {@link InputNormCollector} keeps one norm vector per linear. The pruning pass then streams the
 * checkpoint tensor by tensor like {@link MagnitudePruner}. The norms come from the dense model in
 * one pass rather than from the already-pruned earlier layers as in the paper's sequential code:
 * that needs a single forward pass per batch (works with a layer-by-layer streaming model) and
 * never rewrites weights mid-calibration. The sequential variant (later layers calibrated on the
 * outputs of pruned earlier layers) is not implemented.
 *
 * <p>Every family the forward runs but GPT-2 is pruned: Phi-3's fused projections as the linears
 * they are (their norms are those of the one input they read), Mixtral's and Qwen MoE's experts
 * each on its own with the norms of only the tokens routed to it, Qwen2-MoE's shared expert with
 * those of every token. An expert that saw fewer than {@link LinearGroups#minExpertTokens} routed
 * tokens is pruned by magnitude instead and listed in the report ({@link
 * PruningReport#expertTokens}). The router and {@code shared_expert_gate} are never pruned.
 */
public final class WandaPruner {

  private static final Logger LOG = LoggerFactory.getLogger(WandaPruner.class);

  /** A model that can show its linears' inputs during a forward pass. */
  @FunctionalInterface
  public interface ObservableModel {
    /** Runs {@code tokens} ({@code [batch, seq]}) through the model, calling {@code observer}. */
    NDArray logits(NDManager manager, NDArray tokens, ActivationObserver observer);
  }

  private final PruningSpec spec;

  public WandaPruner(PruningSpec spec) {
    if (spec.method() != PruningSpec.Method.WANDA) {
      throw new IllegalArgumentException(
          "WandaPruner runs method wanda, the spec asks for " + spec.method());
    }
    this.spec = spec;
  }

  /**
   * Feeds the calibration windows (token ids, all of one length) through {@code model} in batches
   * of {@code batchSize} and returns the per-linear input norms.
   */
  public static InputNormCollector calibrate(
      ObservableModel model, NDManager manager, List<int[]> windows, int batchSize) {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("Wanda needs calibration text, found no windows");
    }
    if (batchSize < 1) {
      throw new IllegalArgumentException("batch size must be >= 1, found " + batchSize);
    }
    int seq = windows.get(0).length;
    InputNormCollector norms = new InputNormCollector();
    for (int start = 0; start < windows.size(); start += batchSize) {
      int n = Math.min(batchSize, windows.size() - start);
      int[] flat = new int[n * seq];
      for (int b = 0; b < n; b++) {
        int[] w = windows.get(start + b);
        if (w.length != seq) {
          throw new IllegalArgumentException(
              "calibration windows must share one length: window 0 has "
                  + seq
                  + " tokens, window "
                  + (start + b)
                  + " has "
                  + w.length);
        }
        System.arraycopy(w, 0, flat, b * seq, seq);
      }
      try (NDManager batch = manager.newSubManager()) {
        NDArray tokens = batch.create(flat, new Shape(n, seq));
        model.logits(batch, tokens, norms::observe);
      }
    }
    LOG.debug("calibrated Wanda input norms on {} windows of {} tokens", windows.size(), seq);
    return norms;
  }

  /**
   * Calibrates on {@code windows} and prunes: the model in {@code inputDir} is streamed layer by
   * layer for the calibration passes (only one decoder layer's weights are resident), then pruned
   * tensor by tensor into {@code outputDir}.
   */
  public PruningReport prune(
      Path inputDir, Path outputDir, List<int[]> windows, int batchSize, Device device)
      throws IOException {
    InputNormCollector norms;
    try (StreamingTransformer model = StreamingTransformer.open(inputDir, device);
        NDManager manager = NDManager.newBaseManager(device)) {
      norms = calibrate(model::logits, manager, windows, batchSize);
    }
    return prune(inputDir, outputDir, norms);
  }

  /**
   * Prunes the model in {@code inputDir} into {@code outputDir} (absent or empty) using input norms
   * from {@link #calibrate}.
   */
  public PruningReport prune(Path inputDir, Path outputDir, InputNormCollector norms)
      throws IOException {
    ModelConfig config = ModelConfig.read(inputDir);
    long min = config.moe() ? LinearGroups.minExpertTokens(config) : 0;
    List<ExpertTokens> experts = new ArrayList<>();
    Set<List<Integer>> reported = new HashSet<>();
    return PruningPipeline.run(
        inputDir,
        outputDir,
        spec,
        (target, weight, rows, cols) -> {
          if (target.expert() >= 0) {
            long tokens = norms.tokens(target.layer(), target.name());
            boolean calibrated = tokens >= min;
            // an expert's three projections see the same routed tokens: report it once
            if (reported.add(List.of(target.layer(), target.expert()))) {
              experts.add(new ExpertTokens(target.layer(), target.expert(), tokens, calibrated));
            }
            if (!calibrated) {
              // an expert the router hardly used: its norms say nothing (all zero when unused)
              LOG.warn(
                  "layer {} expert {}: {} routed calibration tokens, fewer than {}; {} pruned by"
                      + " magnitude",
                  target.layer(),
                  target.expert(),
                  tokens,
                  min,
                  target.name());
              for (int i = 0; i < weight.length; i++) {
                weight[i] = Math.abs(weight[i]);
              }
              return weight;
            }
          }
          if (!norms.has(target.layer(), target.name())) {
            throw new IllegalStateException(
                "no calibration input was observed for layer "
                    + target.layer()
                    + " "
                    + target.name()
                    + ": was the model calibrated the one being pruned?");
          }
          return ImportanceScores.wanda(
              weight, rows, cols, norms.norms(target.layer(), target.name()));
        },
        norms.calibrationTokens(),
        experts);
  }
}
