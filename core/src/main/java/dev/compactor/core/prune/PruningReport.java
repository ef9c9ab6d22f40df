package dev.compactor.core.prune;

import dev.compactor.core.prune.PruningSpec.Granularity;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.quant.calib.ExpertTokens;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a pruning run did, for the job's metrics and the model card: the sparsity reached by every
 * pruned tensor and overall, counted from the written values (zeros that were already there count
 * too).
 *
 * @param method the scoring used
 * @param targetSparsity the sparsity asked for
 * @param granularity the comparison group
 * @param tensors one entry per pruned tensor, in file order
 * @param copiedTensors tensors written unchanged (embeddings, norms, head, biases)
 * @param calibrationTokens calibration tokens Wanda or SparseGPT used (0 for magnitude)
 * @param expertTokens Wanda on a mixture of experts: the routed calibration tokens of every (layer,
 *     expert); an expert with too few ({@code calibrated} false) was pruned by magnitude. Empty
 *     otherwise
 * @param pattern the N:M pattern pruned to, null for unstructured pruning
 */
public record PruningReport(
    Method method,
    double targetSparsity,
    Granularity granularity,
    List<TensorSparsity> tensors,
    int copiedTensors,
    long calibrationTokens,
    List<ExpertTokens> expertTokens,
    NmPattern pattern) {

  /** One pruned tensor: elements, how many the mask removed, and how many are zero now. */
  public record TensorSparsity(String name, long elements, long masked, long zeros) {

    /** Fraction of the tensor's elements that are zero after pruning. */
    public double sparsity() {
      return elements == 0 ? 0.0 : (double) zeros / elements;
    }
  }

  public PruningReport {
    tensors = List.copyOf(tensors);
    expertTokens = List.copyOf(expertTokens);
  }

  /** Experts pruned by magnitude because too few calibration tokens were routed to them. */
  public List<ExpertTokens> uncalibratedExperts() {
    return expertTokens.stream().filter(e -> !e.calibrated()).toList();
  }

  /** Zero fraction over all pruned tensors together. */
  public double overallSparsity() {
    long n = 0;
    long z = 0;
    for (TensorSparsity t : tensors) {
      n += t.elements();
      z += t.zeros();
    }
    return n == 0 ? 0.0 : (double) z / n;
  }

  /** Flat metrics for a job's provenance record and the model card. */
  public Map<String, Double> metrics() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("prune.target_sparsity", targetSparsity);
    m.put("prune.overall_sparsity", overallSparsity());
    m.put("prune.pruned_tensors", (double) tensors.size());
    m.put("prune.pruned_elements", (double) prunedElements());
    m.put("prune.calibration_tokens", (double) calibrationTokens);
    if (pattern != null) {
      m.put("prune.pattern_n", (double) pattern.n());
      m.put("prune.pattern_m", (double) pattern.m());
    }
    if (!expertTokens.isEmpty()) {
      m.put("prune.uncalibrated_experts", (double) uncalibratedExperts().size());
    }
    return m;
  }

  /** Elements in the pruned tensors. */
  public long prunedElements() {
    return tensors.stream().mapToLong(TensorSparsity::elements).sum();
  }
}
