package dev.compactor.core.gguf;

import dev.compactor.core.io.DType;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A TensorSource over fp32 arrays held in memory, for tests; counts reads to check streaming. */
final class InMemoryTensorSource implements TensorSource {

  private final Map<String, float[]> data = new LinkedHashMap<>();
  private final Map<String, TensorInfo> infos = new LinkedHashMap<>();
  private long offset;
  int reads;

  InMemoryTensorSource put(String name, float[] values, long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    if (n != values.length) {
      throw new IllegalArgumentException(name + ": shape does not match " + values.length);
    }
    data.put(name, values);
    infos.put(name, new TensorInfo(name, DType.F32, shape, offset, offset + 4L * n));
    offset += 4L * n;
    return this;
  }

  float[] get(String name) {
    return data.get(name);
  }

  @Override
  public List<String> names() {
    return new ArrayList<>(data.keySet());
  }

  @Override
  public TensorInfo info(String name) {
    TensorInfo i = infos.get(name);
    if (i == null) {
      throw new IllegalArgumentException("no tensor " + name);
    }
    return i;
  }

  @Override
  public ByteBuffer raw(String name) {
    float[] v = data.get(name);
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public float[] readFloats(String name) {
    reads++;
    return data.get(name).clone();
  }

  @Override
  public Map<String, String> metadata() {
    return Map.of();
  }

  @Override
  public void close() {}
}
