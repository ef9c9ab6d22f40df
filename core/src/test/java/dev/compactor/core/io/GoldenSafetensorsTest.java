package dev.compactor.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Reads files written by src/test/python/make_safetensors_fixtures.py (by hand from the spec, BF16
 * rounded by PyTorch, F16 by numpy, and checked there against the official safetensors reader) and
 * compares every tensor bit for bit. Also checks our fp16/bf16 encoders against numpy's and
 * PyTorch's rounding of the same source values.
 */
class GoldenSafetensorsTest {

  static Path resource(String name) throws URISyntaxException {
    return Path.of(GoldenSafetensorsTest.class.getResource("/safetensors/" + name).toURI());
  }

  @Test
  void singleFileMatchesPythonExactly() throws Exception {
    JsonNode expected = readExpected("single.expected.json");
    try (TensorSource st = Checkpoints.open(resource("single.safetensors"))) {
      assertEquals("3", expected.get("metadata").size() + "");
      assertEquals(
          Map.of("format", "pt", "producer", "compactor-safetensors-fixtures", "version", "1"),
          st.metadata());
      compareAll(st, expected.get("tensors"));
    }
  }

  @Test
  void shardedSetMatchesPythonExactly() throws Exception {
    JsonNode expected = readExpected("sharded.expected.json");
    try (TensorSource st = Checkpoints.open(resource("sharded"))) {
      assertEquals(
          List.of("embed.weight", "layers.0.attn.q", "layers.0.mlp.up", "norm.weight"), st.names());
      compareAll(st, expected.get("tensors"));
    }
  }

  private static JsonNode readExpected(String name) throws Exception {
    JsonNode root = new ObjectMapper().readTree(resource(name).toFile());
    assertEquals("compactor-safetensors-fixtures", root.get("magic").asText(), "golden magic");
    assertEquals(1, root.get("version").asInt(), "golden version");
    return root;
  }

  private static void compareAll(TensorSource st, JsonNode tensors) throws IOException {
    assertEquals(tensors.size(), st.names().size(), "tensor count");
    for (Map.Entry<String, JsonNode> e : tensors.properties()) {
      compare(st, e.getKey(), e.getValue());
    }
  }

  private static void compare(TensorSource st, String name, JsonNode e) throws IOException {
    TensorInfo info = st.info(name);
    assertEquals(e.get("dtype").asText(), info.dtype().safetensorsName(), name);
    assertArrayEquals(longs(e.get("shape")), info.shape(), name);
    ByteBuffer raw = st.raw(name);
    byte[] bytes = new byte[raw.remaining()];
    raw.duplicate().get(bytes);
    assertEquals(e.get("raw_hex").asText(), HexFormat.of().formatHex(bytes), name + " raw bytes");
    if (e.has("fp32_bits")) {
      float[] values = st.readFloats(name);
      ByteBuffer direct = st.readFloatsDirect(name);
      assertTrue(direct.isDirect());
      assertEquals(ByteOrder.nativeOrder(), direct.order());
      float[] fromDirect = new float[values.length];
      direct.asFloatBuffer().get(fromDirect);
      assertArrayEquals(values, fromDirect, name + " direct and heap reads agree");
      int[] want = ints(e.get("fp32_bits"));
      assertEquals(want.length, values.length, name);
      for (int i = 0; i < want.length; i++) {
        int idx = i;
        assertEquals(
            want[i],
            Float.floatToRawIntBits(values[i]),
            () -> name + "[" + idx + "] differs from the Python reference");
      }
    }
    if (e.has("source_fp32_bits") && info.dtype() != DType.F32) {
      int[] src = ints(e.get("source_fp32_bits"));
      ByteBuffer le = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < src.length; i++) {
        float f = Float.intBitsToFloat(src[i]);
        short ours = info.dtype() == DType.BF16 ? Bf16.fromFloat(f) : Fp16.fromFloat(f);
        short ref = le.getShort(2 * i);
        int idx = i;
        if (Float.isNaN(f)) {
          // NaN payloads are not specified (PyTorch's vectorized path gives 0xFFFF): NaN-ness is.
          float refValue = info.dtype() == DType.BF16 ? Bf16.toFloat(ref) : Fp16.toFloat(ref);
          float ourValue = info.dtype() == DType.BF16 ? Bf16.toFloat(ours) : Fp16.toFloat(ours);
          assertTrue(Float.isNaN(refValue) && Float.isNaN(ourValue), name + "[" + i + "] NaN");
          continue;
        }
        assertEquals(
            ref,
            ours,
            () ->
                name
                    + "["
                    + idx
                    + "]: encoding "
                    + f
                    + " to "
                    + info.dtype()
                    + " disagrees with "
                    + (info.dtype() == DType.BF16 ? "PyTorch" : "numpy"));
      }
    }
  }

  private static long[] longs(JsonNode array) {
    long[] out = new long[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asLong();
    }
    return out;
  }

  private static int[] ints(JsonNode array) {
    List<Integer> out = new ArrayList<>();
    array.forEach(n -> out.add((int) n.asLong()));
    assertTrue(out.size() == array.size());
    return out.stream().mapToInt(Integer::intValue).toArray();
  }
}
