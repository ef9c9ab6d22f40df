package dev.compactor.core.metrics;

import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorChunkReader;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The fraction of exact zeros in a model's decoder linear weights ({@code
 * model.layers.*.*_proj.weight}): what pruning left and what every later stage must keep.
 * Embeddings, norms and the LM head are not counted, since pruning never touches them. Tensors are
 * read in chunks, so a checkpoint larger than RAM is counted in constant memory.
 *
 * @param zeros decoder linear elements equal to 0.0 (either sign)
 * @param elements decoder linear elements in all
 */
public record WeightSparsity(long zeros, long elements) {

  private static final int CHUNK = 1 << 18;

  /** {@code zeros / elements}; 0 when the model has no floating-point decoder linear weight. */
  public double fraction() {
    return elements == 0 ? 0.0 : (double) zeros / elements;
  }

  /**
   * Counts the zeros of the floating-point decoder linear weights in {@code dir}'s safetensors.
   * Weights stored packed (compressed-tensors {@code weight_packed}) are not floating point and are
   * not counted.
   */
  public static WeightSparsity of(Path dir) throws IOException {
    ModelDirectory model = ModelDirectory.open(dir);
    TensorChunkReader reader = new TensorChunkReader();
    float[] buf = new float[CHUNK];
    long zeros = 0;
    long elements = 0;
    try (TensorSource source = model.weights()) {
      for (String name : source.names()) {
        TensorInfo t = source.info(name);
        if (!LayerwiseQuantizer.isDecoderLinear(name) || !t.dtype().isFloat()) {
          continue;
        }
        long n = t.numel();
        for (long first = 0; first < n; first += CHUNK) {
          int count = (int) Math.min(CHUNK, n - first);
          reader.read(source, name, first, buf, 0, count);
          for (int i = 0; i < count; i++) {
            if (buf[i] == 0f) {
              zeros++;
            }
          }
        }
        elements += n;
      }
    }
    return new WeightSparsity(zeros, elements);
  }
}
