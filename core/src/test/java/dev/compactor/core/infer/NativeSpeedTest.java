package dev.compactor.core.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The native speed probe's medians, its settings checks and its refusals (no timings asserted). */
class NativeSpeedTest {

  @Test
  void medianOfOddAndEvenCounts() {
    assertEquals(3.0, NativeSpeed.median(new double[] {5, 1, 3}));
    assertEquals(2.5, NativeSpeed.median(new double[] {4, 1, 3, 2}));
    assertEquals(7.0, NativeSpeed.median(new double[] {7}));
    double[] v = {9, 8, 7};
    NativeSpeed.median(v);
    assertEquals(9.0, v[0], "the input is not reordered");
    assertThrows(IllegalArgumentException.class, () -> NativeSpeed.median(new double[0]));
    assertThrows(IllegalArgumentException.class, () -> new NativeSpeed.Settings(0, 1, 1, 1));
  }

  @Test
  void measuresTheMedianRunAndRefusesTooLongRuns(@TempDir Path tmp) throws Exception {
    Path gguf = tmp.resolve("m.gguf");
    GgufExport.export(TinyReferenceModel.shipped(), LlamaFileType.Q8_0, Map.of(), gguf);
    NativeSpeed.Result r =
        NativeSpeed.measure(gguf, new int[] {1, 2, 3}, new NativeSpeed.Settings(5, 3, 3, 1));
    assertEquals("Q8_0", r.fileType());
    assertEquals(3, r.decodeRuns().length);
    assertTrue(Arrays.stream(r.decodeRuns()).allMatch(x -> x > 0));
    assertTrue(
        Arrays.stream(r.decodeRuns()).anyMatch(x -> x == r.decodeTokensPerSecond()),
        "the median of three runs is one of them");
    assertTrue(Arrays.stream(r.prefillRuns()).anyMatch(x -> x == r.prefillTokensPerSecond()));
    assertTrue(r.weightBytesPerToken() > 0);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                NativeSpeed.measure(gguf, new int[] {1}, new NativeSpeed.Settings(250, 10, 1, 1)));
    assertTrue(e.getMessage().contains("exceed the model's context of 256"), e.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> NativeSpeed.measure(gguf, new int[] {1 << 30}, new NativeSpeed.Settings(2, 1, 1, 1)));
  }
}
