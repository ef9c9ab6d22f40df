package dev.compactor.core.model.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.model.CausalLM;

/**
 * Incremental decoding over a {@link KvCache}: each step runs only the new positions through the
 * layers, in a per-step manager that is closed afterwards (only the cache and the returned logits
 * survive, in the caller's manager).
 */
public final class CachedDecoder implements CausalLM.Decoder {

  /** One forward over new positions, appending to the cache. */
  @FunctionalInterface
  public interface StepFunction {
    NDArray run(NDManager m, NDArray tokens, KvCache cache);
  }

  private final NDManager manager;
  private final int batch;
  private final KvCache cache;
  private final StepFunction function;

  public CachedDecoder(NDManager manager, int layers, int batch, StepFunction function) {
    this.manager = manager;
    this.batch = batch;
    this.cache = new KvCache(manager, layers);
    this.function = function;
  }

  @Override
  public NDArray step(NDArray tokens) {
    if (tokens.getShape().dimension() != 2 || tokens.getShape().get(0) != batch) {
      throw new IllegalArgumentException(
          "decoder: expected tokens [" + batch + ", n], found " + tokens.getShape());
    }
    try (NDManager call = manager.newSubManager()) {
      NDArray out = function.run(call, tokens, cache);
      out.attach(manager);
      return out;
    }
  }

  @Override
  public int position() {
    return cache.position();
  }

  @Override
  public void close() {
    cache.close();
  }
}
