package dev.compactor.core.lora;

import java.util.List;
import java.util.Set;

/**
 * The shape of a LoRA adapter: rank {@code r}, {@code lora_alpha} (the delta is scaled by {@code
 * alpha / r}, PEFT's scaling without rsLoRA), the decoder linears it adapts (module names as PEFT's
 * {@code target_modules} spells them, e.g. {@code q_proj}) and the seed of the initialisation.
 *
 * @param rank r, the inner dimension of {@code B [out, r] · A [r, in]}
 * @param alpha PEFT's {@code lora_alpha}
 * @param targets module names of the adapted linears (matched against the last name segment before
 *     {@code .weight} of every decoder layer tensor)
 * @param seed seed of A's initialisation
 */
public record LoraSpec(int rank, float alpha, List<String> targets, long seed) {

  /** The attention and MLP projections of Llama-style models, PEFT users' usual full set. */
  public static final List<String> DEFAULT_TARGETS =
      List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");

  public LoraSpec {
    if (rank < 1) {
      throw new IllegalArgumentException("LoRA rank must be >= 1, found " + rank);
    }
    if (!(alpha > 0f) || !Float.isFinite(alpha)) {
      throw new IllegalArgumentException("lora_alpha must be a positive number, found " + alpha);
    }
    targets = List.copyOf(targets);
    if (targets.isEmpty()) {
      throw new IllegalArgumentException("a LoRA needs at least one target module");
    }
    for (String t : targets) {
      if (!t.matches("[A-Za-z0-9_]+")) {
        throw new IllegalArgumentException(
            "target modules are plain module names like q_proj, found '" + t + "'");
      }
    }
    if (Set.copyOf(targets).size() != targets.size()) {
      throw new IllegalArgumentException("target modules repeat: " + targets);
    }
  }

  /** Rank 8, alpha 16 on the default targets: the values PEFT's examples use most. */
  public static LoraSpec defaults() {
    return new LoraSpec(8, 16f, DEFAULT_TARGETS, 1234L);
  }

  /** The factor the delta {@code B·A} is multiplied by. */
  public float scaling() {
    return alpha / rank;
  }
}
