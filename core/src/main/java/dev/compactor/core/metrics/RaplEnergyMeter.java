package dev.compactor.core.metrics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Measured CPU energy from Linux powercap RAPL counters: the sum of the package domains' {@code
 * energy_uj} (microjoules, a free-running counter that wraps at {@code max_energy_range_uj}).
 *
 * <p>Layout read ({@code <root>} is normally {@code /sys/class/powercap}):
 *
 * <pre>
 * &lt;root&gt;/intel-rapl:0/name                 "package-0"
 * &lt;root&gt;/intel-rapl:0/energy_uj            e.g. 123456789
 * &lt;root&gt;/intel-rapl:0/max_energy_range_uj  e.g. 262143328850
 * &lt;root&gt;/intel-rapl:0:0/...                sub-domain (core, uncore, dram): inside package 0
 * &lt;root&gt;/intel-rapl:1/name                 "package-1" or "psys" (platform, contains packages)
 * &lt;root&gt;/intel-rapl-mmio:0/...             the same package counter again through MMIO
 * </pre>
 *
 * Only top-level zones ({@code <prefix>-rapl:<n>}, one colon) named {@code package-*} are summed:
 * sub-domains, {@code psys} and the MMIO copies count the same joules again. AMD processors appear
 * under the same {@code intel-rapl} driver names on current kernels; {@code amd-rapl:<n>} is
 * accepted too. The counters cover the whole package, so other processes' work is in the figure.
 * Reading {@code energy_uj} needs root on kernels since 5.10 (CVE-2020-8694): an unreadable counter
 * makes the meter {@link EnergyMeter.Unavailable}, never zero.
 */
public final class RaplEnergyMeter implements EnergyMeter {

  /** Where the kernel exposes powercap zones. */
  public static final Path SYSFS = Path.of("/sys/class/powercap");

  private static final Pattern TOP_LEVEL_ZONE = Pattern.compile("(intel|amd)-rapl:[0-9]+");

  private record Domain(String zone, Path counter, long range) {}

  private final List<Domain> domains;

  private RaplEnergyMeter(List<Domain> domains) {
    this.domains = List.copyOf(domains);
  }

  /**
   * Finds the package domains under {@code root} and checks that each counter reads.
   *
   * @throws EnergyMeter.Unavailable saying why: no directory, no package domain, a counter that
   *     cannot be read or is not a number
   */
  public static RaplEnergyMeter open(Path root) throws Unavailable {
    if (!Files.isDirectory(root)) {
      throw new Unavailable("no powercap directory " + root + " (no RAPL on this machine)");
    }
    List<Path> zones;
    try (Stream<Path> s = Files.list(root)) {
      zones =
          s.filter(p -> TOP_LEVEL_ZONE.matcher(p.getFileName().toString()).matches())
              .sorted()
              .toList();
    } catch (IOException e) {
      throw new Unavailable("cannot list " + root + ": " + e.getMessage());
    }
    List<Domain> domains = new ArrayList<>();
    for (Path zone : zones) {
      String name = readText(zone.resolve("name"));
      if (!name.startsWith("package")) {
        continue;
      }
      long range = readCounter(zone.resolve("max_energy_range_uj"));
      readCounter(zone.resolve("energy_uj"));
      domains.add(new Domain(zone.getFileName().toString(), zone.resolve("energy_uj"), range));
    }
    if (domains.isEmpty()) {
      throw new Unavailable(
          "no RAPL package domain under " + root + " (zones found: " + names(zones) + ")");
    }
    return new RaplEnergyMeter(domains);
  }

  @Override
  public Kind kind() {
    return Kind.MEASURED;
  }

  @Override
  public String source() {
    return "RAPL package energy ("
        + String.join(", ", domains.stream().map(Domain::zone).toList())
        + "), whole CPU package(s): other processes' work included, DRAM and GPU not";
  }

  @Override
  public Interval start() {
    long[] start = read();
    return () -> {
      long[] now = read();
      long uj = 0;
      for (int i = 0; i < now.length; i++) {
        uj += delta(start[i], now[i], domains.get(i).range());
      }
      return uj / 1e6;
    };
  }

  /**
   * Microjoules between two readings of a counter that wraps to 0 after {@code range}: at most one
   * wrap between readings is assumed (a package at 200 W wraps a 2^32 µJ range after ~6 hours of
   * continuous load, far longer than one interval).
   */
  static long delta(long before, long after, long range) {
    return after >= before ? after - before : range - before + after;
  }

  private long[] read() {
    long[] v = new long[domains.size()];
    for (int i = 0; i < v.length; i++) {
      try {
        v[i] = readCounter(domains.get(i).counter());
      } catch (Unavailable e) {
        throw new IllegalStateException("RAPL counter stopped reading: " + e.getMessage(), e);
      }
    }
    return v;
  }

  private static long readCounter(Path file) throws Unavailable {
    String text = readText(file);
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new Unavailable("expected a counter in " + file + ", found '" + text + "'");
    }
  }

  private static String readText(Path file) throws Unavailable {
    try {
      return Files.readString(file).trim();
    } catch (IOException | SecurityException e) {
      throw new Unavailable(
          "cannot read "
              + file
              + " ("
              + e.getClass().getSimpleName()
              + ": "
              + e.getMessage()
              + "; energy_uj is root-only on current kernels)");
    }
  }

  private static String names(List<Path> zones) {
    return zones.isEmpty()
        ? "none"
        : String.join(", ", zones.stream().map(p -> p.getFileName().toString()).toList());
  }
}
