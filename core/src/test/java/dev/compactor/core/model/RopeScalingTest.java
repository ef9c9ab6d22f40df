package dev.compactor.core.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * Inverse frequencies at real model sizes (head 128) against the plain-torch formulas of
 * make_model_golden.py (values printed by its rope_params), plus what is refused and why.
 */
class RopeScalingTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static RopeScaling rope(String json) throws Exception {
    JsonNode c = JSON.readTree(json);
    return RopeScaling.from(c, 128);
  }

  private static void assertInvFreq(float[] expected, float[] inv) {
    int[] at = {0, 20, 40, 63};
    for (int i = 0; i < at.length; i++) {
      float e = expected[i];
      assertEquals(e, inv[at[i]], Math.abs(e) * 2e-6, "inv_freq[" + at[i] + "]");
    }
  }

  @Test
  void llama31MatchesReferenceAndLlamaCppFactors() throws Exception {
    RopeScaling r =
        rope(
            "{\"rope_theta\":500000.0,\"max_position_embeddings\":131072,\"rope_scaling\":"
                + "{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                + "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}");
    float[] inv = r.invFreq(10);
    assertInvFreq(new float[] {1.0f, 0.0165604409f, 3.42810235e-05f, 3.06892588e-07f}, inv);
    // llama.cpp's rope_freqs divide the unscaled frequency: the same scaling, written another way
    float[] base = r.baseInvFreq();
    float[] factors = r.llama3FreqFactors();
    for (int j = 0; j < inv.length; j++) {
      assertEquals(base[j] / factors[j], inv[j], inv[j] * 1e-5, "rope_freqs[" + j + "]");
    }
    assertEquals(1f, factors[0]);
    assertEquals(8f, factors[63]);
    assertEquals(131072, r.positionLimit());
  }

  @Test
  void yarnWithMscaleRatio() throws Exception {
    RopeScaling r =
        rope(
            "{\"rope_theta\":1000000.0,\"max_position_embeddings\":131072,\"rope_scaling\":"
                + "{\"factor\":4.0,\"original_max_position_embeddings\":32768,\"type\":\"yarn\","
                + "\"mscale\":0.707,\"mscale_all_dim\":1.0}}");
    assertEquals(0.964326914892074, r.attentionFactor(), 1e-6);
    assertTrue(!r.defaultYarnAttention());
    assertInvFreq(
        new float[] {1.0f, 0.0133352149f, 4.44569851e-05f, 3.10234441e-07f}, r.invFreq(10));
    RopeScaling plain =
        rope("{\"rope_theta\":1000000.0,\"rope_scaling\":{\"factor\":4.0,\"rope_type\":\"yarn\"}}");
    assertEquals(0.1 * Math.log(4) + 1, plain.attentionFactor(), 1e-6);
    assertTrue(plain.defaultYarnAttention());
    assertEquals(8192, plain.positionLimit(), "factor x max_position_embeddings (2048 default)");
  }

  @Test
  void dynamicGrowsThetaPastTheContextOnly() throws Exception {
    RopeScaling r =
        rope(
            "{\"rope_theta\":1000000.0,\"max_position_embeddings\":4096,"
                + "\"rope_scaling\":{\"factor\":4.0,\"type\":\"dynamic\"}}");
    assertInvFreq(
        new float[] {1.0f, 0.00800027233f, 6.40043581e-05f, 2.48187575e-07f}, r.invFreq(8192));
    float[] base = r.baseInvFreq();
    float[] within = r.invFreq(4096);
    for (int j = 0; j < base.length; j++) {
      assertEquals(base[j], within[j], base[j] * 1e-6);
    }
    assertEquals(16384, r.positionLimit());
  }

  @Test
  void readsTransformersV5RopeParameters() throws Exception {
    RopeScaling r =
        rope(
            "{\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0,"
                + "\"rope_theta\":250000.0}}");
    assertEquals(RopeScaling.Type.LINEAR, r.type());
    assertEquals(250000.0, r.theta());
    assertEquals(
        RopeScaling.Type.DEFAULT, rope("{\"rope_scaling\":{\"type\":\"default\"}}").type());
  }

  @Test
  void refusesWhatIsNotBuilt() {
    assertEquals(
        "not supported: rope_scaling.rope_type=longrope",
        assertThrows(
                UnsupportedModelException.class,
                () -> rope("{\"rope_scaling\":{\"rope_type\":\"longrope\",\"factor\":2.0}}"))
            .getMessage());
    assertEquals(
        "not supported: rope_scaling.low_freq_factor=1.0",
        assertThrows(
                UnsupportedModelException.class,
                () ->
                    rope(
                        "{\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":2.0,"
                            + "\"low_freq_factor\":1.0}}"))
            .getMessage());
    assertEquals(
        "not supported: partial_rotary_factor=0.5 (modeling_llama rotates the whole head)",
        assertThrows(UnsupportedModelException.class, () -> rope("{\"partial_rotary_factor\":0.5}"))
            .getMessage());
    assertEquals(
        "config.json: rope_scaling.high_freq_factor is required for rope_type llama3",
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    rope(
                        "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                            + "\"low_freq_factor\":1.0,"
                            + "\"original_max_position_embeddings\":8192}}"))
            .getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> rope("{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":\"2\"}}"));
    assertThrows(
        IllegalArgumentException.class,
        () -> rope("{\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":0.5}}"));
  }
}
