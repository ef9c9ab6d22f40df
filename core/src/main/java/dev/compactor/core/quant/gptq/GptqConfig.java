package dev.compactor.core.quant.gptq;

/**
 * Settings of one GPTQ run, named as in AutoGPTQ / llm-compressor.
 *
 * @param bits 4 or 8; 2 or 3 for evaluation of the dequantized weights (no exporter writes them)
 * @param symmetric zero-point-free grid (compressed-tensors' default for GPTQ int4)
 * @param groupSize columns per scale group: 32, 64 or 128, or 0 for one scale per output channel
 * @param percDamp dampening added to the Hessian's diagonal, as a fraction of its mean (0.01)
 * @param blockSize columns per lazy-update block (128); must be a multiple of the group size
 * @param actOrder activation order: none, static groups, or groups in permuted order with g_idx
 */
public record GptqConfig(
    int bits, boolean symmetric, int groupSize, double percDamp, int blockSize, ActOrder actOrder) {

  /**
   * Whether and how columns are processed in order of decreasing Hessian diagonal (the inputs with
   * the most activation energy first, so later columns absorb their error).
   */
  public enum ActOrder {
    /** Natural column order. */
    NONE,
    /**
     * Permuted processing, but groups (and their scales) are the natural consecutive column groups,
     * fixed from the unmodified weights before quantization starts: AutoGPTQ's {@code
     * static_groups=True}, compressed-tensors' {@code actorder: "weight"}. The stored format is the
     * plain group format (no g_idx), so every kernel runs it.
     */
    WEIGHT,
    /**
     * Permuted processing with groups formed over the permuted order ({@code g_idx[perm[i]] = i /
     * groupSize}): AutoGPTQ's {@code desc_act=True} with dynamic groups, compressed-tensors' {@code
     * actorder: "group"}. More accurate; the export carries {@code weight_g_idx}.
     */
    GROUP
  }

  public GptqConfig {
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new UnsupportedOperationException(
          "not supported yet: " + bits + "-bit GPTQ (2, 3, 4 and 8 are)");
    }
    if (groupSize != 0 && groupSize != 32 && groupSize != 64 && groupSize != 128) {
      throw new IllegalArgumentException(
          "group size must be 0 (per channel), 32, 64 or 128, found " + groupSize);
    }
    if (!(percDamp > 0 && percDamp < 1)) {
      throw new IllegalArgumentException("percDamp must be in (0, 1), found " + percDamp);
    }
    if (blockSize <= 0 || (groupSize > 0 && blockSize % groupSize != 0)) {
      throw new IllegalArgumentException(
          "block size must be a positive multiple of the group size "
              + groupSize
              + ", found "
              + blockSize);
    }
    if (actOrder == null) {
      throw new IllegalArgumentException("actOrder must be given (NONE for natural order)");
    }
    if (actOrder == ActOrder.GROUP && groupSize == 0) {
      throw new IllegalArgumentException(
          "actOrder GROUP needs groups; with one scale per channel use WEIGHT (same result)");
    }
  }

  /** The usual GPTQ int4 recipe: symmetric, damp 0.01, block 128, no activation order. */
  public static GptqConfig int4(int groupSize) {
    return new GptqConfig(4, true, groupSize, 0.01, 128, ActOrder.NONE);
  }

  /** A copy with another activation-order mode. */
  public GptqConfig withActOrder(ActOrder mode) {
    return new GptqConfig(bits, symmetric, groupSize, percDamp, blockSize, mode);
  }
}
