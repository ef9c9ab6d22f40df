package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class StageParamsTest {
  @Test
  void typedGettersWithDefaults() {
    StageParams p =
        StageParams.parse(
            "{\"method\":\"gptq\",\"bits\":4,\"ratio\":0.5,\"act_order\":true,"
                + "\"export\":[\"gguf\",\"safetensors\"],\"nested\":{\"k\":1}}");
    assertEquals("gptq", p.requireString("method"));
    assertEquals(4, p.integer("bits", 8));
    assertEquals(128, p.integer("group_size", 128));
    assertEquals(0.5, p.number("ratio", 0));
    assertTrue(p.flag("act_order", false));
    assertEquals(List.of("gguf", "safetensors"), p.strings("export"));
    assertEquals(1, p.object("nested").orElseThrow().integer("k", 0));
    assertTrue(StageParams.parse("").names().isEmpty());
  }

  @Test
  void wrongTypesNameTheParameter() {
    StageParams p = StageParams.parse("{\"bits\":\"four\",\"ratio\":\"half\"}");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> p.integer("bits", 4));
    assertEquals("param 'bits': expected an integer, found \"four\"", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> p.number("ratio", 0));
    assertThrows(IllegalArgumentException.class, () -> p.requireString("method"));
    assertThrows(IllegalArgumentException.class, () -> StageParams.parse("[1,2]"));
    assertThrows(IllegalArgumentException.class, () -> StageParams.parse("{oops"));
  }
}
