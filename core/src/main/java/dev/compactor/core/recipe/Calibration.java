package dev.compactor.core.recipe;

/**
 * The calibration text that data-aware stages (Wanda pruning, GPTQ/AWQ quantization, distillation)
 * read: where it is, how many samples to draw and how many tokens each sample holds.
 *
 * @param dataset URI of a UTF-8 text file ({@code s3://bucket/key}, {@code file:} URI or path)
 * @param samples number of sequences to draw
 * @param seqLen tokens per sequence
 */
public record Calibration(String dataset, int samples, int seqLen) {

  public Calibration {
    if (dataset == null || dataset.isBlank()) {
      throw new IllegalArgumentException("calibration dataset must be a non-empty URI");
    }
    if (samples <= 0 || seqLen <= 0) {
      throw new IllegalArgumentException(
          "calibration samples and seq_len must be > 0, found " + samples + " and " + seqLen);
    }
  }
}
