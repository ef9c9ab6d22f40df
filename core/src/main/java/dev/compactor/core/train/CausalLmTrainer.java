package dev.compactor.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import dev.compactor.core.model.Transformer;

/**
 * Trains a {@link Transformer} in place, one batch per {@link #step}: forward with gradients, loss,
 * backward, global-norm clipping, AdamW update at the scheduled learning rate. The loss is a
 * function of the logits, so distillation can plug in a loss against teacher logits.
 */
public final class CausalLmTrainer {

  /**
   * A differentiable loss from logits {@code [B, T, V]} and the batch's tokens {@code [B, T]} to a
   * scalar. Use array constants, not {@code mul(Number)}, for scalar arithmetic (see {@link
   * Losses}).
   */
  @FunctionalInterface
  public interface LossFunction {
    NDArray loss(NDArray logits, NDArray tokens);
  }

  private final Transformer model;
  private final AdamW optimizer;
  private final CosineSchedule schedule;
  private final double clipNorm;
  private final LossFunction lossFunction;
  private double lastGradNorm;

  /**
   * @param clipNorm global gradient norm limit; {@code 0} disables clipping
   */
  public CausalLmTrainer(
      Transformer model,
      AdamW optimizer,
      CosineSchedule schedule,
      double clipNorm,
      LossFunction lossFunction) {
    this.model = model;
    this.optimizer = optimizer;
    this.schedule = schedule;
    this.clipNorm = clipNorm;
    this.lossFunction = lossFunction;
  }

  /** Next-token cross entropy training with the given optimizer and schedule. */
  public static CausalLmTrainer languageModeling(
      Transformer model, AdamW optimizer, CosineSchedule schedule, double clipNorm) {
    return new CausalLmTrainer(model, optimizer, schedule, clipNorm, Losses::nextTokenCrossEntropy);
  }

  /**
   * One optimizer step on {@code tokens} ({@code [batch][seq]}, equal lengths); returns the loss.
   */
  public float step(int[][] tokens) {
    int seq = tokens[0].length;
    int[] flat = new int[tokens.length * seq];
    for (int b = 0; b < tokens.length; b++) {
      if (tokens[b].length != seq) {
        throw new IllegalArgumentException(
            "batch rows must have equal length: row 0 has "
                + seq
                + ", row "
                + b
                + " has "
                + tokens[b].length);
      }
      System.arraycopy(tokens[b], 0, flat, b * seq, seq);
    }
    try (NDManager m = NDManager.newBaseManager(model.device())) {
      return step(m.create(flat, new Shape(tokens.length, seq)));
    }
  }

  /** One optimizer step on an integer {@code [batch, seq]} array; returns the loss before it. */
  public float step(NDArray tokens) {
    float loss;
    try (NDManager m = tokens.getManager().newSubManager(model.device());
        GradientCollector collector = Autograd.collector()) {
      NDArray logits = model.forward(m, tokens);
      NDArray value = lossFunction.loss(logits, tokens);
      collector.backward(value);
      loss = value.getFloat();
    }
    if (clipNorm > 0) {
      lastGradNorm = GradientClipping.clipGlobalNorm(optimizer.parameters(), clipNorm);
    }
    optimizer.step(schedule.lr(optimizer.steps()));
    return loss;
  }

  /** Global gradient norm of the last step before clipping (0 when clipping is off). */
  public double lastGradNorm() {
    return lastGradNorm;
  }

  /** Steps taken so far. */
  public int steps() {
    return optimizer.steps();
  }
}
