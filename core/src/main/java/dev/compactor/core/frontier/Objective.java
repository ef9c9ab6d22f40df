package dev.compactor.core.frontier;

import java.util.Objects;

/**
 * One axis of a trade-off: a named value of each point that is better when smaller (size, latency,
 * perplexity, KL) or when larger (top-1 agreement, task accuracy, decode speed).
 *
 * @param name the key of the value in {@link FrontierPoint#values()}
 * @param label what a person reads in tables and plots, e.g. "size (bytes)"
 * @param goal which direction is better
 */
public record Objective(String name, String label, Goal goal) {

  /** Which direction of an objective is better. */
  public enum Goal {
    MINIMIZE,
    MAXIMIZE
  }

  public Objective {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(goal, "goal");
    label = label == null ? name : label;
  }

  /** An objective where smaller is better. */
  public static Objective minimize(String name, String label) {
    return new Objective(name, label, Goal.MINIMIZE);
  }

  /** An objective where larger is better. */
  public static Objective maximize(String name, String label) {
    return new Objective(name, label, Goal.MAXIMIZE);
  }

  /** Negative when {@code a} is better than {@code b}, zero when equal, positive when worse. */
  public int compare(double a, double b) {
    int c = Double.compare(a, b);
    return goal == Goal.MINIMIZE ? c : -c;
  }

  /** The best of two values. */
  public double best(double a, double b) {
    return compare(a, b) <= 0 ? a : b;
  }
}
