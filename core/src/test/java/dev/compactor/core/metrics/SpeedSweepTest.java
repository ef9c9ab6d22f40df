package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The sweep's shape on the tiny reference model; no timing is asserted. */
class SpeedSweepTest {

  @Test
  void onePointPerBatchAndContextWithEnergyFromTheSameRuns() throws Exception {
    int[] source = IntStream.range(0, 400).map(i -> (i * 7) % 256).toArray();
    AtomicLong fakeCpu = new AtomicLong();
    // Every read of the CPU clock advances it by 1 ms: energy then counts the meter's reads, so
    // joules per token are exactly predictable from the token counts alone.
    CpuTimeEnergyMeter meter =
        new CpuTimeEnergyMeter(1.0, () -> fakeCpu.addAndGet(1_000_000), "test clock");
    SpeedSweep.Config config = new SpeedSweep.Config(List.of(1, 3), List.of(8, 24), 3, 2);
    try (CausalLM model = Transformer.load(TinyReferenceModel.shipped(), ai.djl.Device.cpu())) {
      SpeedSweep.Result r = new SpeedSweep(config, meter).measure(model, source);
      assertEquals(4, r.points().size());
      int[][] expected = {{1, 8}, {1, 24}, {3, 8}, {3, 24}};
      for (int i = 0; i < 4; i++) {
        SpeedPoint p = r.points().get(i);
        assertArrayEquals(expected[i], new int[] {p.batch(), p.contextLength()}, p.toString());
        assertEquals(3, p.decodeTokens());
        assertTrue(p.prefillTokensPerSecond() > 0 && p.decodeTokensPerSecond() > 0, p.toString());
        // Each interval reads the clock twice: 1 ms × 1 W = 1 mJ per phase.
        assertEquals(1e-3 / (p.batch() * p.contextLength()), p.prefillJoulesPerToken(), 1e-15);
        assertEquals(1e-3 / (p.batch() * 3), p.decodeJoulesPerToken(), 1e-15);
        assertTrue(p.peakRssBytes() == -1 || p.peakRssBytes() > 1 << 20, p.toString());
      }
      LatencyResult first = r.points().get(0).asLatency();
      assertEquals(8, first.promptTokens());
      assertEquals(1000 / r.points().get(0).prefillTokensPerSecond(), first.prefillMsPerToken());

      SpeedSweep.Result speedOnly =
          new SpeedSweep(new SpeedSweep.Config(List.of(2), List.of(8), 2, 1), null)
              .measure(model, source);
      assertTrue(Double.isNaN(speedOnly.points().get(0).decodeJoulesPerToken()));

      SpeedSweep tooLong =
          new SpeedSweep(new SpeedSweep.Config(List.of(1), List.of(250), 10, 1), null);
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> tooLong.measure(model, source));
      assertTrue(e.getMessage().contains("exceed the model's context length 256"), e.getMessage());
    }
  }

  @Test
  void promptsAreDifferentWindowsOfTheSource() {
    int[] source = IntStream.range(0, 10).toArray();
    int[][] p = SpeedSweep.prompts(source, 3, 4);
    assertArrayEquals(new int[] {0, 1, 2, 3}, p[0]);
    assertArrayEquals(new int[] {4, 5, 6, 7}, p[1]);
    assertArrayEquals(new int[] {1, 2, 3, 4}, p[2]); // 8 % 7 places
    assertEquals(2.5, SpeedSweep.median(new double[] {4, 1, 2, 3}));
    assertEquals(2, SpeedSweep.median(new double[] {3, 1, 2}));
  }
}
