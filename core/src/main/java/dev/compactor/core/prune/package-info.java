/**
 * Unstructured pruning of decoder linears: {@link dev.compactor.core.prune.Pruning#run} is the
 * stage entry; {@link dev.compactor.core.prune.MagnitudePruner} scores |W| and {@link
 * dev.compactor.core.prune.WandaPruner} scores |W| * ||X||_2 from calibration inputs. Both stream a
 * checkpoint tensor by tensor into a new Hugging Face directory: pruned tensors keep their dtype
 * (masked elements' bytes are zeroed, kept elements keep their exact bits), every other tensor,
 * config.json and the tokenizer files are copied unchanged, and a {@link
 * dev.compactor.core.prune.PruningReport} counts the zeros actually written.
 */
package dev.compactor.core.prune;
