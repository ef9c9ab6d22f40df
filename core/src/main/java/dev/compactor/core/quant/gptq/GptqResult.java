package dev.compactor.core.quant.gptq;

import dev.compactor.core.quant.export.QuantizedLinear;

/**
 * What GPTQ made of one linear weight.
 *
 * @param weight codes, scales, zero points and (activation order GROUP) g_idx, ready to export
 * @param dequantized the weight the codes stand for, row-major {@code rows x cols}: put it in the
 *     model to compute the quantized model's outputs
 * @param loss GPTQ's own error estimate, {@code sum (w - q)^2 / (2 [H^-1]_jj^2)} over all elements
 *     (AutoGPTQ's logged "error")
 * @param deadColumns inputs that were never active in the calibration data (zero Hessian diagonal);
 *     their weights are set to 0
 */
public record GptqResult(
    QuantizedLinear weight, float[] dequantized, double loss, int deadColumns) {}
