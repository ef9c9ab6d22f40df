/**
 * Pruning of decoder linears, unstructured or N:M ({@link dev.compactor.core.prune.NmPattern}):
 * {@link dev.compactor.core.prune.Pruning#run} is the stage entry. {@link
 * dev.compactor.core.prune.MagnitudePruner} scores |W| and {@link
 * dev.compactor.core.prune.WandaPruner} scores |W| * ||X||_2 from calibration inputs; both stream a
 * checkpoint tensor by tensor into a new Hugging Face directory, pruned tensors keeping their dtype
 * (masked elements' bytes are zeroed, kept elements keep their exact bits). {@link
 * dev.compactor.core.prune.SparseGptPruner} runs {@link dev.compactor.core.prune.SparseGpt} layer
 * by layer on the already-pruned model and updates the kept weights (written in the checkpoint's
 * dtype). Every other tensor, config.json and the tokenizer files are copied unchanged, and a
 * {@link dev.compactor.core.prune.PruningReport} counts the zeros actually written.
 */
package dev.compactor.core.prune;
