/**
 * AWQ weight quantization: activation-aware input-channel scales folded into the preceding
 * operation, optional clipping, then round-to-nearest ({@link
 * dev.compactor.core.quant.awq.AwqQuantizer}, {@link
 * dev.compactor.core.quant.awq.AwqLayerQuantizer}, {@link
 * dev.compactor.core.quant.awq.AwqModelQuantizer}).
 */
package dev.compactor.core.quant.awq;
