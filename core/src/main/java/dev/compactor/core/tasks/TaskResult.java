package dev.compactor.core.tasks;

/**
 * A task's scores over its documents, with lm-eval's standard errors (sample standard deviation of
 * the per-document scores over the square root of their number).
 *
 * @param task the task's name
 * @param documents documents scored
 * @param acc fraction right: the highest log-likelihood choice is gold (multiple choice), or greedy
 *     decoding gives the continuation (continuation tasks)
 * @param accStderr standard error of {@code acc}
 * @param accNorm multiple choice: fraction right by log-likelihood per character of the choice; NaN
 *     for continuation tasks
 * @param accNormStderr its standard error, NaN when {@code accNorm} is
 * @param perplexity continuation tasks: exp of minus the mean per-document log-likelihood of the
 *     continuation (lm-eval's {@code perplexity}); NaN for multiple choice
 */
public record TaskResult(
    String task,
    int documents,
    double acc,
    double accStderr,
    double accNorm,
    double accNormStderr,
    double perplexity) {

  /** lm-eval's {@code mean_stderr}: sample standard deviation / sqrt(n); NaN below 2 values. */
  static double stderr(double[] values) {
    int n = values.length;
    if (n < 2) {
      return Double.NaN;
    }
    double mean = 0;
    for (double v : values) {
      mean += v;
    }
    mean /= n;
    double ss = 0;
    for (double v : values) {
      ss += (v - mean) * (v - mean);
    }
    return Math.sqrt(ss / (n - 1)) / Math.sqrt(n);
  }
}
