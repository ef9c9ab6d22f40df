/**
 * Depth pruning: whole decoder layers scored on calibration text and removed. {@link
 * dev.compactor.core.prune.depth.DepthScorer} streams the windows' hidden states through the model
 * one layer at a time and measures how much each layer (block influence, ShortGPT) and each block
 * of consecutive layers (angular distance, Gromov et al.) changes them; {@link
 * dev.compactor.core.prune.depth.DepthPruner} rewrites the checkpoint without the chosen layers,
 * renumbering the rest densely and updating {@code config.json}. {@link
 * dev.compactor.core.prune.depth.DepthPruning#run} is the stage entry.
 */
package dev.compactor.core.prune.depth;
