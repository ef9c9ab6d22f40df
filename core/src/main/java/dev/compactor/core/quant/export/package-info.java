/**
 * compressed-tensors checkpoints (the format vLLM and transformers load quantized weights from):
 * {@link dev.compactor.core.quant.export.QuantizedLinear}, the packing, the writer and reader, and
 * a layer sink that writes a quantized model as it is produced.
 */
package dev.compactor.core.quant.export;
