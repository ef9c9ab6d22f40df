package dev.compactor.core.prune;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;

/**
 * Unstructured magnitude pruning: in every targeted decoder linear (fused Phi-3 projections as the
 * single linears they are, each expert of Mixtral or Qwen MoE on its own; never the router or
 * {@code shared_expert_gate}), the weights with the smallest |W| are set to zero, either within
 * each output row (the default, the comparison group the Wanda paper found better for LLMs) or
 * across the whole tensor. Needs no calibration data, streams the checkpoint one tensor at a time
 * and writes a loadable Hugging Face directory.
 */
public final class MagnitudePruner {

  private final PruningSpec spec;

  public MagnitudePruner(PruningSpec spec) {
    if (spec.method() != PruningSpec.Method.MAGNITUDE) {
      throw new IllegalArgumentException(
          "MagnitudePruner runs method magnitude, the spec asks for " + spec.method());
    }
    this.spec = spec;
  }

  /**
   * Prunes the model in {@code inputDir} into {@code outputDir} (absent or empty): weights,
   * config.json and tokenizer files.
   */
  public PruningReport prune(Path inputDir, Path outputDir) throws IOException {
    return PruningPipeline.run(
        inputDir,
        outputDir,
        spec,
        (target, weight, rows, cols) -> {
          for (int i = 0; i < weight.length; i++) {
            weight[i] = Math.abs(weight[i]);
          }
          return weight;
        },
        0L,
        new ArrayList<>());
  }
}
