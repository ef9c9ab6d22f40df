package dev.compactor.core.quant.mixed;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.QuantizedTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Per-linear quantization sensitivity: for each decoder linear and each candidate, only that linear
 * is quantized (RTN) and the mean per-token KL divergence of the next-token distribution from the
 * unquantized model's is measured on calibration windows. Summing these over linears is an additive
 * proxy for the loss of a mixed plan (it ignores interactions between linears), the proxy
 * AutoQuantize-style allocators use.
 */
public final class Sensitivity {

  /**
   * One measured linear.
   *
   * @param layer decoder layer
   * @param name tensor name relative to the layer prefix, e.g. {@code mlp.down_proj.weight}
   * @param fullName name in the checkpoint
   * @param params weights in the linear
   * @param options per candidate (in the order given): bytes and KL
   */
  public record Linear(
      int layer, String name, String fullName, long params, List<Allocation.Option> options) {}

  private Sensitivity() {}

  /**
   * Measures every {@code *_proj.weight} of every decoder layer of {@code model} under each of
   * {@code candidates} on {@code windows} (token windows of equal length).
   */
  public static List<Linear> measure(
      Transformer model, List<int[]> windows, List<QuantOption> candidates) {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("need at least one calibration window");
    }
    int len = windows.get(0).length;
    int[] ids = new int[windows.size() * len];
    for (int i = 0; i < windows.size(); i++) {
      if (windows.get(i).length != len) {
        throw new IllegalArgumentException("calibration windows must have equal length");
      }
      System.arraycopy(windows.get(i), 0, ids, i * len, len);
    }
    List<Linear> out = new ArrayList<>();
    Map<String, NDArray> params = model.parameters();
    try (NDManager root = NDManager.newBaseManager(model.device())) {
      NDArray input = root.create(ids, new Shape(windows.size(), len));
      NDArray base = model.logits(root, input).logSoftmax(2);
      long positions = (long) windows.size() * len;
      for (int layer = 0; layer < model.config().numLayers(); layer++) {
        String prefix = model.layerPrefix(layer);
        for (String full : params.keySet()) {
          if (!full.startsWith(prefix) || !full.endsWith("_proj.weight")) {
            continue;
          }
          String name = full.substring(prefix.length());
          NDArray w = params.get(full);
          long[] shape = w.getShape().getShape();
          int rows = (int) shape[0];
          int cols = (int) shape[1];
          float[] values = w.toFloatArray();
          List<Allocation.Option> options = new ArrayList<>();
          for (QuantOption c : candidates) {
            QuantizedTensor q = c.quantize(values, rows, cols);
            try (NDManager m = root.newSubManager()) {
              NDArray replaced = m.create(q.dequantize(), w.getShape());
              int target = layer;
              NDArray lq =
                  model
                      .logits(
                          m,
                          input,
                          (l, n, stored, scope) ->
                              l == target && n.equals(name) ? replaced : stored)
                      .logSoftmax(2);
              double kl = base.exp().mul(base.sub(lq)).sum().getFloat() / positions;
              options.add(
                  new Allocation.Option(c.id(), c.storedBytes(rows, cols), Math.max(0, kl)));
            }
          }
          out.add(new Linear(layer, name, full, (long) rows * cols, List.copyOf(options)));
        }
      }
    }
    return out;
  }
}
