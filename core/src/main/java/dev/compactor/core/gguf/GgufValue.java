package dev.compactor.core.gguf;

import java.util.List;
import java.util.Objects;

/**
 * One typed GGUF metadata value. Scalars hold a boxed Java value (unsigned types in the next wider
 * signed type: UINT8/UINT16 as Integer, UINT32 as Long, UINT64 as Long bits); STRING holds a
 * String; ARRAY holds a {@code List} of values of {@code elementType} in the same representation.
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

  public GgufValue {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(value, "value");
    if (type == GgufValueType.ARRAY) {
      Objects.requireNonNull(elementType, "array element type");
      if (elementType == GgufValueType.ARRAY) {
        throw new IllegalArgumentException("nested arrays are not supported");
      }
      value = List.copyOf((List<?>) value);
    }
  }

  public static GgufValue u8(int v) {
    return new GgufValue(GgufValueType.UINT8, null, v);
  }

  public static GgufValue u32(long v) {
    if (v < 0 || v > 0xffffffffL) {
      throw new IllegalArgumentException("uint32 out of range: " + v);
    }
    return new GgufValue(GgufValueType.UINT32, null, v);
  }

  public static GgufValue i32(int v) {
    return new GgufValue(GgufValueType.INT32, null, v);
  }

  public static GgufValue u64(long v) {
    return new GgufValue(GgufValueType.UINT64, null, v);
  }

  public static GgufValue i64(long v) {
    return new GgufValue(GgufValueType.INT64, null, v);
  }

  public static GgufValue f32(float v) {
    return new GgufValue(GgufValueType.FLOAT32, null, v);
  }

  public static GgufValue f64(double v) {
    return new GgufValue(GgufValueType.FLOAT64, null, v);
  }

  public static GgufValue bool(boolean v) {
    return new GgufValue(GgufValueType.BOOL, null, v);
  }

  public static GgufValue string(String v) {
    return new GgufValue(GgufValueType.STRING, null, v);
  }

  public static GgufValue array(GgufValueType elementType, List<?> values) {
    return new GgufValue(GgufValueType.ARRAY, elementType, values);
  }

  public static GgufValue stringArray(List<String> values) {
    return array(GgufValueType.STRING, values);
  }

  public static GgufValue i32Array(int[] values) {
    return array(GgufValueType.INT32, java.util.Arrays.stream(values).boxed().toList());
  }

  public static GgufValue f32Array(float[] values) {
    Float[] boxed = new Float[values.length];
    for (int i = 0; i < values.length; i++) {
      boxed[i] = values[i];
    }
    return array(GgufValueType.FLOAT32, List.of(boxed));
  }

  /** The value as a long (integer scalar types); throws for other types. */
  public long asLong() {
    if (value instanceof Number n
        && type != GgufValueType.FLOAT32
        && type != GgufValueType.FLOAT64) {
      return n.longValue();
    }
    throw new IllegalStateException("not an integer value: " + type);
  }

  public double asDouble() {
    if (value instanceof Number n) {
      return n.doubleValue();
    }
    throw new IllegalStateException("not a number: " + type);
  }

  public String asString() {
    if (value instanceof String s) {
      return s;
    }
    throw new IllegalStateException("not a string: " + type);
  }

  @SuppressWarnings("unchecked")
  public List<Object> asList() {
    if (type == GgufValueType.ARRAY) {
      return (List<Object>) value;
    }
    throw new IllegalStateException("not an array: " + type);
  }
}
