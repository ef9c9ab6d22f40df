/**
 * Mixture-of-experts compression: per-expert calibration statistics ({@link
 * dev.compactor.core.moe.ExpertStatistics}), expert pruning ({@link
 * dev.compactor.core.moe.ExpertPruner}) and expert merging ({@link
 * dev.compactor.core.moe.ExpertMerger}), each writing a smaller Hugging Face checkpoint.
 */
package dev.compactor.core.moe;
