/**
 * Low-rank adapters (LoRA, Hu et al. 2021) trained over a frozen base model to recover what pruning
 * or quantization lost: {@link dev.compactor.core.lora.LoraAdapter} holds the adapter matrices and
 * the {@link dev.compactor.core.model.WeightTransform} a pass computes with, {@link
 * dev.compactor.core.lora.PeftAdapterFiles} reads and writes them as a Hugging Face PEFT adapter
 * directory, {@link dev.compactor.core.lora.AdaptedModel} evaluates base + adapter without merging,
 * and {@link dev.compactor.core.lora.LoraRecovery} runs a whole recovery (train against the
 * original model with the distiller, export, optionally merge).
 */
package dev.compactor.core.lora;
