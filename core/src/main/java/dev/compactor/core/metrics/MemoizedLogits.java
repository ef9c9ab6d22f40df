package dev.compactor.core.metrics;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A baseline that remembers its logits: the comparison tables score many variants against one
 * reference model on the same text, in the same windows, so the reference's forward pass is the
 * same for every row. This computes each distinct input once (through the wrapped model) and hands
 * back a copy of the stored fp32 logits afterwards, so every row sees exactly the numbers the first
 * one did. Inputs beyond {@code maxBytes} of stored logits are computed every time, as without this
 * wrapper. Decoding (latency probes) goes straight to the wrapped model.
 *
 * <p>The wrapped model is not owned: {@link #close} drops the stored logits only.
 */
public final class MemoizedLogits implements CausalLM {

  private final CausalLM model;
  private final long maxBytes;
  private final Map<Key, Logits> stored = new HashMap<>();
  private long storedBytes;
  private long computed;

  /**
   * @param model the reference model (its logits must depend on the input only)
   * @param maxBytes most bytes of logits to keep
   */
  public MemoizedLogits(CausalLM model, long maxBytes) {
    if (maxBytes < 0) {
      throw new IllegalArgumentException("expected maxBytes >= 0, found " + maxBytes);
    }
    this.model = model;
    this.maxBytes = maxBytes;
  }

  /** Keeps at most a quarter of the heap this JVM may grow to, and never more than 1 GiB. */
  public static MemoizedLogits of(CausalLM model) {
    return new MemoizedLogits(model, Math.min(1L << 30, Runtime.getRuntime().maxMemory() / 4));
  }

  @Override
  public int vocabSize() {
    return model.vocabSize();
  }

  @Override
  public int maxSequenceLength() {
    return model.maxSequenceLength();
  }

  @Override
  public NDArray logits(NDManager manager, NDArray tokens) {
    Key key =
        new Key(tokens.getShape().getShape(), tokens.toType(DataType.INT64, true).toLongArray());
    Logits hit = stored.get(key);
    if (hit != null) {
      return manager.create(hit.values(), new Shape(hit.shape()));
    }
    NDArray out = model.logits(manager, tokens);
    computed++;
    long bytes = 4L * out.size();
    if (out.getDataType() == DataType.FLOAT32 && storedBytes + bytes <= maxBytes) {
      stored.put(key, new Logits(out.toFloatArray(), out.getShape().getShape()));
      storedBytes += bytes;
    }
    return out;
  }

  /** How many times the wrapped model's logits were computed. */
  public long computed() {
    return computed;
  }

  /** Bytes of logits kept. */
  public long storedBytes() {
    return storedBytes;
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    return model.decoder(manager, batch);
  }

  @Override
  public void close() {
    stored.clear();
    storedBytes = 0;
  }

  private record Logits(float[] values, long[] shape) {}

  /** An input by value: its shape and token ids. */
  private record Key(long[] shape, long[] ids) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Key k && Arrays.equals(shape, k.shape) && Arrays.equals(ids, k.ids);
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(shape) + Arrays.hashCode(ids);
    }

    @Override
    public String toString() {
      return "Key" + Arrays.toString(shape);
    }
  }
}
