/**
 * Checkpoint I/O: reading and writing Hugging Face style model directories without ever holding a
 * whole model in the heap or deserializing pickle files.
 *
 * <ul>
 *   <li>{@link dev.compactor.core.io.ModelDirectory#open} — validate a model directory (config,
 *       weights, tokenizer files, links) and describe it (parameter count, dominant dtype, hashes).
 *   <li>{@link dev.compactor.core.io.Checkpoints#open} — a {@link
 *       dev.compactor.core.io.TensorSource} over {@code model.safetensors} or a sharded set.
 *   <li>{@link dev.compactor.core.io.SafetensorsFile} — one file, header validated field by field,
 *       tensors memory-mapped one at a time (the byte layout is documented there).
 *   <li>{@link dev.compactor.core.io.SafetensorsWriter} — streaming writer, sharding and index.
 *   <li>{@link dev.compactor.core.io.Bf16}, {@link dev.compactor.core.io.Fp16} — conversions in
 *       plain Java (the DJL engine aborts on bf16).
 * </ul>
 *
 * Every format violation is a {@link dev.compactor.core.io.CheckpointFormatException} (for
 * safetensors a {@link dev.compactor.core.io.SafetensorsFormatException} with field, expected and
 * found), so a stage can turn it into a readable {@code StageFailed} reason.
 */
package dev.compactor.core.io;
