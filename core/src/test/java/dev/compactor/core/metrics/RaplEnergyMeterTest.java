package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Known answers of the RAPL reader on a powercap tree written into a temporary directory. */
class RaplEnergyMeterTest {

  @TempDir Path root;

  private void zone(String dir, String name, long energyUj, long rangeUj) throws IOException {
    Path z = Files.createDirectories(root.resolve(dir));
    Files.writeString(z.resolve("name"), name + "\n");
    Files.writeString(z.resolve("energy_uj"), energyUj + "\n");
    Files.writeString(z.resolve("max_energy_range_uj"), rangeUj + "\n");
  }

  private void counter(String dir, long energyUj) throws IOException {
    Files.writeString(root.resolve(dir).resolve("energy_uj"), energyUj + "\n");
  }

  @Test
  void sumsPackageDomainsOnlyAndHandlesAWrap() throws Exception {
    long range = 262_143_328_850L;
    zone("intel-rapl:0", "package-0", 1_000_000, range);
    zone("intel-rapl:0:0", "core", 500_000, range);
    zone("intel-rapl:0:1", "dram", 100_000, range);
    zone("intel-rapl:1", "package-1", range - 2_000_000, range);
    zone("intel-rapl:2", "psys", 9_000_000, range);
    zone("intel-rapl-mmio:0", "package-0", 1_000_000, range);
    RaplEnergyMeter meter = RaplEnergyMeter.open(root);
    assertEquals(EnergyMeter.Kind.MEASURED, meter.kind());
    assertTrue(meter.source().contains("intel-rapl:0, intel-rapl:1"), meter.source());
    assertTrue(meter.label().startsWith("measured: RAPL"), meter.label());

    EnergyMeter.Interval interval = meter.start();
    counter("intel-rapl:0", 4_500_000); // +3.5 J
    counter("intel-rapl:0:0", 90_000_000); // sub-domain, inside package 0: not added again
    counter("intel-rapl:1", 1_250_000); // wrapped: 2.0 J to the top, then 1.25 J
    counter("intel-rapl:2", 99_000_000); // psys contains the packages: not added
    counter("intel-rapl-mmio:0", 77_000_000); // MMIO copy of package 0: not added
    assertEquals(3.5 + 2.0 + 1.25, interval.joules(), 1e-12);
  }

  @Test
  void acceptsTheAmdNaming() throws Exception {
    zone("amd-rapl:0", "package-0", 10, 1_000);
    RaplEnergyMeter meter = RaplEnergyMeter.open(root);
    EnergyMeter.Interval interval = meter.start();
    counter("amd-rapl:0", 5); // wrapped at 1000 µJ: 990 + 5
    assertEquals(995e-6, interval.joules(), 1e-15);
  }

  @Test
  void deltaKnownAnswers() {
    assertEquals(7, RaplEnergyMeter.delta(3, 10, 100));
    assertEquals(0, RaplEnergyMeter.delta(42, 42, 100));
    assertEquals(15, RaplEnergyMeter.delta(90, 5, 100));
  }

  @Test
  void missingDirectoryIsUnavailableWithTheReason() {
    EnergyMeter.Unavailable e =
        assertThrows(
            EnergyMeter.Unavailable.class, () -> RaplEnergyMeter.open(root.resolve("absent")));
    assertTrue(e.getMessage().contains("no powercap directory"), e.getMessage());
  }

  @Test
  void noPackageDomainIsUnavailable() throws Exception {
    zone("intel-rapl:0", "psys", 1, 100);
    EnergyMeter.Unavailable e =
        assertThrows(EnergyMeter.Unavailable.class, () -> RaplEnergyMeter.open(root));
    assertTrue(e.getMessage().contains("no RAPL package domain"), e.getMessage());
    assertTrue(e.getMessage().contains("intel-rapl:0"), e.getMessage());
  }

  @Test
  void unreadableCounterIsUnavailableNotZero() throws Exception {
    zone("intel-rapl:0", "package-0", 1, 100);
    Path counter = root.resolve("intel-rapl:0/energy_uj");
    // A counter that fails to read whoever we are (root ignores file modes): a directory.
    Files.delete(counter);
    Files.createDirectory(counter);
    EnergyMeter.Unavailable e =
        assertThrows(EnergyMeter.Unavailable.class, () -> RaplEnergyMeter.open(root));
    assertTrue(e.getMessage().contains("cannot read"), e.getMessage());
    assertTrue(e.getMessage().contains("energy_uj"), e.getMessage());
  }

  @Test
  void rootOnlyCounterIsUnavailableForOthers() throws Exception {
    assumeFalse("root".equals(System.getProperty("user.name")), "root reads mode-000 files");
    zone("intel-rapl:0", "package-0", 1, 100);
    Files.setPosixFilePermissions(
        root.resolve("intel-rapl:0/energy_uj"), PosixFilePermissions.fromString("---------"));
    EnergyMeter.Unavailable e =
        assertThrows(EnergyMeter.Unavailable.class, () -> RaplEnergyMeter.open(root));
    assertTrue(e.getMessage().contains("root-only"), e.getMessage());
  }

  @Test
  void garbageCounterIsUnavailable() throws Exception {
    zone("intel-rapl:0", "package-0", 1, 100);
    Files.writeString(root.resolve("intel-rapl:0/energy_uj"), "n/a\n");
    EnergyMeter.Unavailable e =
        assertThrows(EnergyMeter.Unavailable.class, () -> RaplEnergyMeter.open(root));
    assertTrue(e.getMessage().contains("expected a counter"), e.getMessage());
  }
}
