package dev.compactor.core.cascade;

/** How an item's quality is measured, and which way is better. */
public enum QualityMetric {
  /** Task accuracy (1 right, 0 wrong per document), higher is better. */
  ACCURACY("acc"),
  /** Negative log-likelihood of the held-out token (nats), lower is better. */
  NLL("nll");

  private final String id;

  QualityMetric(String id) {
    this.id = id;
  }

  public String id() {
    return id;
  }

  /**
   * The quality {@code q} relative to the large model's {@code large}, 1 when equal and above 1
   * when better: {@code q / large} for accuracy, {@code large / q} for NLL.
   */
  public double ratio(double q, double large) {
    return this == ACCURACY ? q / large : large / q;
  }
}
