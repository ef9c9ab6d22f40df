/**
 * Layer-dropping knowledge distillation: {@link dev.compactor.core.distill.StudentBuilder} makes a
 * student from a subset of the teacher's decoder layers, {@link
 * dev.compactor.core.distill.Distiller} trains it on calibration windows with {@link
 * dev.compactor.core.distill.DistillationLoss} (temperature-scaled KL to the teacher plus
 * cross-entropy), checkpointing through a {@link dev.compactor.core.distill.CheckpointSink} so that
 * a restarted worker resumes at the same step with the same data order.
 */
package dev.compactor.core.distill;
