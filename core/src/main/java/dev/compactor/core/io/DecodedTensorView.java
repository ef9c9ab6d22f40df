package dev.compactor.core.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A dense view of a checkpoint whose weights are stored in parts (a codebook and indices, a sparse
 * bitmask and values): each set of parts appears as one dense tensor, decoded when read; every
 * other tensor passes through. A subclass names its dense tensors with {@link #addDense} and
 * passthrough tensors with {@link #addStored} in file order, and decodes one dense tensor in {@link
 * #decode}. The last decoded tensor is kept: chunked readers ({@link TensorChunkReader}) ask for
 * one tensor many times.
 */
abstract class DecodedTensorView implements TensorSource {

  protected final TensorSource stored;
  protected final Map<String, TensorInfo> dense = new LinkedHashMap<>();
  private final Set<String> names = new LinkedHashSet<>();
  private List<String> order;
  private String lastName;
  private ByteBuffer lastDecoded;

  protected DecodedTensorView(TensorSource stored) {
    this.stored = stored;
  }

  /** Lists {@code name} as a tensor passed through from the stored checkpoint. */
  protected final void addStored(String name) {
    names.add(name);
    order = null;
  }

  /** Lists {@code t} as a dense tensor decoded from stored parts. */
  protected final void addDense(TensorInfo t) {
    dense.put(t.name(), t);
    names.add(t.name());
    order = null;
  }

  /** The little-endian bytes of the dense tensor {@code t}, decoded from its stored parts. */
  protected abstract ByteBuffer decode(TensorInfo t) throws IOException;

  /** The tensors as stored (the parts included). */
  public TensorSource stored() {
    return stored;
  }

  @Override
  public final List<String> names() {
    if (order == null) {
      order = List.copyOf(names);
    }
    return order;
  }

  @Override
  public final TensorInfo info(String name) {
    TensorInfo t = dense.get(name);
    return t != null ? t : stored.info(name);
  }

  @Override
  public final boolean contains(String name) {
    return names.contains(name);
  }

  @Override
  public final synchronized ByteBuffer raw(String name) throws IOException {
    TensorInfo t = dense.get(name);
    if (t == null) {
      return stored.raw(name);
    }
    if (!name.equals(lastName)) {
      lastDecoded = decode(t);
      lastName = name;
    }
    return lastDecoded.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public final float[] readFloats(String name) throws IOException {
    return TensorDecoding.toFloats(info(name), raw(name), this);
  }

  @Override
  public final Map<String, String> metadata() {
    return stored.metadata();
  }

  @Override
  public final void close() throws IOException {
    stored.close();
  }
}
