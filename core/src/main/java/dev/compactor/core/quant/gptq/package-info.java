/**
 * GPTQ weight quantization ({@link dev.compactor.core.quant.gptq.ObsHessian} is the inverse-Hessian
 * machinery it shares with SparseGPT): {@link dev.compactor.core.quant.gptq.GptqQuantizer} for one
 * linear (weight + Hessian in, codes/scales/g_idx and dequantized weight out), {@link
 * dev.compactor.core.quant.gptq.GptqLayerQuantizer} for layer-wise calibration, and {@link
 * dev.compactor.core.quant.gptq.GptqModelQuantizer} for a whole model directory to a
 * compressed-tensors checkpoint.
 */
package dev.compactor.core.quant.gptq;
