/**
 * Non-uniform codebook quantization (SqueezeLLM, Kim et al. 2023): every output row of every
 * decoder linear gets {@code 2^bits} F16 centroids fitted by sensitivity-weighted k-means ({@link
 * dev.compactor.core.quant.codebook.WeightedKMeans}, exact or Lloyd; sensitivities from {@link
 * dev.compactor.core.quant.codebook.Sensitivity}: none, the Hessian diagonal, or the Fisher
 * diagonal of {@link dev.compactor.core.quant.codebook.FisherSensitivity}), stored as packed
 * indices plus codebooks ({@link dev.compactor.core.io.Codebook}) by {@link
 * dev.compactor.core.quant.codebook.CodebookModelQuantizer} and read back dense by {@link
 * dev.compactor.core.io.Checkpoints#open}. {@link dev.compactor.core.quant.codebook.CodebookTable}
 * compares it with RTN and GPTQ at equal bits.
 */
package dev.compactor.core.quant.codebook;
