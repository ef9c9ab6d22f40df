package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CPU-time estimate's arithmetic, the power integration behind the nvidia-smi meter, and which
 * meter is chosen where.
 */
class EnergyEstimateTest {

  @Test
  void cpuTimeTimesWattsPerCore() {
    AtomicLong cpu = new AtomicLong(5_000_000_000L);
    CpuTimeEnergyMeter meter = new CpuTimeEnergyMeter(3.5, cpu::get, "test");
    EnergyMeter.Interval interval = meter.start();
    cpu.addAndGet(2_500_000_000L); // 2.5 CPU-seconds, e.g. two threads for 1.25 s
    assertEquals(2.5 * 3.5, interval.joules(), 1e-12);
    assertEquals(EnergyMeter.Kind.ESTIMATED, meter.kind());
    assertTrue(meter.label().startsWith("estimated: cpu-time × W/core"), meter.label());
    assertEquals(0.004, CpuTimeEnergyMeter.joules(1_000_000, 4.0), 1e-15);
  }

  @Test
  void wattsComeFromTheEnvironmentOrTheDocumentedDefault() {
    assertTrue(CpuTimeEnergyMeter.forThisProcess(null).source().contains("4.00 W"));
    CpuTimeEnergyMeter set = CpuTimeEnergyMeter.forThisProcess(" 7.5 ");
    assertTrue(set.source().contains("7.50 W"), set.source());
    assertTrue(set.source().contains("COMPACTOR_CPU_WATTS_PER_CORE=7.5"), set.source());
    assertThrows(IllegalArgumentException.class, () -> CpuTimeEnergyMeter.forThisProcess("ten"));
    assertThrows(IllegalArgumentException.class, () -> CpuTimeEnergyMeter.forThisProcess("-1"));
    assertThrows(IllegalArgumentException.class, () -> new CpuTimeEnergyMeter(0, () -> 0, "zero"));
  }

  @Test
  void realProcessCpuTimeGrowsWithWork() {
    CpuTimeEnergyMeter meter = CpuTimeEnergyMeter.forThisProcess("10");
    EnergyMeter.Interval interval = meter.start();
    double x = 0;
    for (int i = 0; i < 20_000_000; i++) {
      x += Math.sqrt(i);
    }
    assertTrue(x > 0);
    assertTrue(interval.joules() > 0, "some CPU time was spent");
    if (Files.isDirectory(Path.of("/proc/self/task"))) {
      assertTrue(meter.source().contains("clock: per-thread schedstat"), meter.source());
      long before = CpuTimeEnergyMeter.schedstatNanos();
      for (int i = 0; i < 20_000_000; i++) {
        x += Math.sqrt(i);
      }
      assertTrue(x > 0 && CpuTimeEnergyMeter.schedstatNanos() > before, "nanosecond clock");
    }
  }

  @Test
  void powerIntegrationKnownAnswers() {
    long s = 1_000_000_000L;
    long[] t = {0, s, 2 * s};
    double[] w = {100, 200, 200};
    // Trapezoid 0..1 s: 150 J; flat 1..2 s: 200 J.
    assertEquals(350, NvidiaSmiEnergyMeter.integrate(t, w, 0, 2 * s), 1e-9);
    // Half a second inside the ramp: 100 -> 150 W over 0.5 s = 62.5 J.
    assertEquals(62.5, NvidiaSmiEnergyMeter.integrate(t, w, 0, s / 2), 1e-9);
    // Held flat before the first and after the last sample.
    assertEquals(100, NvidiaSmiEnergyMeter.integrate(t, w, -s, 0), 1e-9);
    assertEquals(400, NvidiaSmiEnergyMeter.integrate(t, w, 2 * s, 4 * s), 1e-9);
    assertEquals(0, NvidiaSmiEnergyMeter.integrate(t, w, s, s));
    assertEquals(71.25, NvidiaSmiEnergyMeter.watts(" 71.25 "));
    assertTrue(Double.isNaN(NvidiaSmiEnergyMeter.watts("[N/A]")));
  }

  @Test
  void withoutCountersTheEstimateIsChosenAndTheReasonsKept(@TempDir Path tmp) {
    EnergyMeters.Choice cpu = EnergyMeters.choose(-1, tmp.resolve("no-powercap"), "5");
    assertEquals(EnergyMeter.Kind.ESTIMATED, cpu.meter().kind());
    assertEquals(1, cpu.notUsed().size(), cpu.notUsed().toString());
    assertTrue(cpu.notUsed().get(0).startsWith("RAPL: no powercap directory"));
  }

  @Test
  void raplIsPreferredToTheEstimate(@TempDir Path tmp) throws Exception {
    Path z = Files.createDirectories(tmp.resolve("intel-rapl:0"));
    Files.writeString(z.resolve("name"), "package-0");
    Files.writeString(z.resolve("energy_uj"), "5");
    Files.writeString(z.resolve("max_energy_range_uj"), "1000");
    EnergyMeters.Choice c = EnergyMeters.choose(-1, tmp, null);
    assertEquals(EnergyMeter.Kind.MEASURED, c.meter().kind());
    assertEquals(java.util.List.of(), c.notUsed());
  }

  @Test
  void aGpuWithoutNvidiaSmiSaysItsEnergyIsMissing(@TempDir Path tmp) {
    assumeTrue(!onPath("nvidia-smi"), "this machine has nvidia-smi");
    EnergyMeters.Choice c = EnergyMeters.choose(0, tmp, null);
    assertTrue(c.notUsed().get(0).startsWith("GPU power (nvidia-smi): no nvidia-smi"));
    assertTrue(c.meter().source().contains("GPU whose energy is NOT included"));
  }

  /** Runs only where a GPU and nvidia-smi are present (not on the CPU build machines). */
  @Test
  void nvidiaSmiMeasuresBoardPowerOnAGpu() throws Exception {
    assumeTrue(onPath("nvidia-smi"), "no nvidia-smi on this machine");
    try (NvidiaSmiEnergyMeter meter = NvidiaSmiEnergyMeter.open("nvidia-smi", 0, 50)) {
      EnergyMeter.Interval interval = meter.start();
      long until = System.nanoTime() + 300_000_000L;
      while (System.nanoTime() < until) {
        Thread.onSpinWait();
      }
      double j = interval.joules();
      // An idle board draws tens of watts: 0.3 s gives a few joules, never nothing.
      assertTrue(j > 0.3 && j < 1000, j + " J");
    }
  }

  private static boolean onPath(String exe) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, exe))) {
        return true;
      }
    }
    return false;
  }
}
