package dev.compactor.core.quant.calib;

/**
 * Routed calibration tokens of one expert of one mixture-of-experts layer, for the quantization and
 * pruning reports.
 *
 * @param calibrated false when below {@link LinearGroups#minExpertTokens}: the expert was
 *     compressed without calibration statistics (GPTQ: round-to-nearest, AWQ: no scale, Wanda:
 *     magnitude)
 */
public record ExpertTokens(int layer, int expert, long tokens, boolean calibrated) {}
