package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.TensorSource;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;

/**
 * Golden fixtures made by core/src/test/python/make_model_golden.py (an independent plain-PyTorch
 * reference): a model directory per case and golden.safetensors with inputs and expected outputs.
 */
public final class Golden implements AutoCloseable {

  public static final List<String> CASES =
      List.of(
          "gpt2_tied",
          "llama_gqa_tied",
          "llama_gqa_untied_bias_bf16",
          "qwen2_sharded",
          "gpt2_plain_bf16",
          "llama3_rope_tied",
          "qwen2_rope_yarn",
          "llama_rope_dynamic",
          "mistral_rope_linear",
          "qwen3_qk_norm",
          "mistral_window",
          "qwen2_window_layers",
          "phi3_fused",
          "phi3_partial_rotary",
          "mixtral_moe",
          "qwen2_moe_shared",
          "qwen3_moe_qk_norm");
  public static final double TOLERANCE = 1e-4;

  public final String name;
  public final Path dir;
  private final TensorSource golden;

  public Golden(String name) throws IOException {
    this.name = name;
    try {
      this.dir =
          Paths.get(Golden.class.getResource("/golden/" + name + "/config.json").toURI())
              .getParent();
    } catch (URISyntaxException e) {
      throw new IOException(e);
    }
    this.golden = SafetensorsFile.open(dir.resolve("golden.safetensors"));
    assertEquals(
        "compactor-model-golden",
        golden.metadata().get("magic"),
        "golden file magic: regenerate with make_model_golden.py");
    assertEquals("1", golden.metadata().get("version"), "golden file version");
  }

  public NDArray inputIds(NDManager m) throws IOException {
    long[] shape = golden.info("input_ids").shape();
    LongBuffer raw =
        golden.raw("input_ids").duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
    long[] ids = new long[raw.remaining()];
    raw.get(ids);
    return m.create(ids, new Shape(shape));
  }

  public boolean has(String tensor) {
    return golden.contains(tensor);
  }

  public float[] floats(String tensor) throws IOException {
    return golden.readFloats(tensor);
  }

  public long[] shape(String tensor) {
    return golden.info(tensor).shape();
  }

  /** Compares element by element; on mismatch names the worst index and a likely cause. */
  public void assertClose(String tensor, NDArray actual, String hint) throws IOException {
    assertArrayEquals(shape(tensor), actual.getShape().getShape(), name + ": shape of " + tensor);
    float[] expected = floats(tensor);
    float[] got = actual.toFloatArray();
    double worst = 0;
    int at = -1;
    for (int i = 0; i < expected.length; i++) {
      double err = Math.abs(expected[i] - got[i]);
      if (!(err <= worst)) {
        worst = err;
        at = i;
      }
    }
    String where =
        at < 0
            ? ""
            : " at flat index " + at + " (expected " + expected[at] + ", got " + got[at] + ")";
    assertTrue(
        worst <= TOLERANCE,
        name + ": " + tensor + " max abs error " + worst + where + ". Hint: " + hint);
  }

  @Override
  public void close() throws IOException {
    golden.close();
  }
}
