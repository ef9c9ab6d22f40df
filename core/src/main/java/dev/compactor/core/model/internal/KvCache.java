package dev.compactor.core.model.internal;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;

/**
 * Keys and values of every layer for the positions seen so far ({@code [batch, kvHeads, seen,
 * headDim]}, keys after RoPE, as HF caches them), owned by one manager. Old arrays are closed as
 * the cache grows, so a long generation holds one copy per layer; a sliding-window layer keeps only
 * its window ({@link #retain}), so the layers' lengths may differ.
 */
public final class KvCache implements AutoCloseable {

  private final NDManager manager;
  private final NDArray[] keys;
  private final NDArray[] values;
  private int position;

  public KvCache(NDManager parent, int layers) {
    this.manager = parent.newSubManager();
    this.keys = new NDArray[layers];
    this.values = new NDArray[layers];
  }

  /** Adds this step's keys and values of {@code layer}; returns all keys and values so far. */
  public NDArray[] append(int layer, NDArray k, NDArray v) {
    keys[layer] = grow(keys[layer], k);
    values[layer] = grow(values[layer], v);
    return new NDArray[] {keys[layer], values[layer]};
  }

  /** Drops all but the last {@code window} cached positions of {@code layer}. */
  public void retain(int layer, int window) {
    long seen = keys[layer].getShape().get(2);
    if (seen > window) {
      keys[layer] = keep(keys[layer], seen - window);
      values[layer] = keep(values[layer], seen - window);
    }
  }

  private NDArray keep(NDArray old, long from) {
    NDArray view = old.get(new NDIndex(":, :, {}:", from));
    NDArray tail = view.duplicate(); // a copy, so the dropped positions' memory is freed
    view.close();
    tail.attach(manager);
    old.close();
    return tail;
  }

  private NDArray grow(NDArray old, NDArray step) {
    NDArray all;
    if (old == null) {
      all = step.duplicate();
    } else {
      all = old.concat(step, 2);
      old.close();
    }
    all.attach(manager);
    return all;
  }

  /** Positions already cached. */
  public int position() {
    return position;
  }

  /** Called once all layers have appended a step of {@code tokens} positions. */
  public void advance(int tokens) {
    position += tokens;
  }

  @Override
  public void close() {
    manager.close();
  }
}
