package dev.compactor.core.metrics;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Estimated energy: the process's CPU time multiplied by a configured power per busy CPU, for
 * machines without an energy counter. {@code joules = cpu seconds × watts per core}.
 *
 * <p>The default {@value #DEFAULT_WATTS_PER_CORE} W per CPU (a CPU as the OS counts it: one
 * hardware thread, so one vCPU on a cloud VM) is roughly a current server processor's TDP divided
 * by its hardware threads: a Xeon Platinum 8380 is 270 W / 80 threads ≈ 3.4 W, an 8375C 300 W / 64
 * ≈ 4.7 W, an EPYC 7763 280 W / 128 ≈ 2.2 W. Set {@code COMPACTOR_CPU_WATTS_PER_CORE} to the figure
 * of the machine. The estimate leaves out idle, memory and uncore power and counts every thread of
 * the JVM (garbage collector and compiler included).
 */
public final class CpuTimeEnergyMeter implements EnergyMeter {

  /** Environment variable with the watts per busy CPU. */
  public static final String ENV = "COMPACTOR_CPU_WATTS_PER_CORE";

  /** Watts per busy CPU when {@link #ENV} is not set; see the class comment for the basis. */
  public static final double DEFAULT_WATTS_PER_CORE = 4.0;

  private final double wattsPerCore;
  private final LongSupplier cpuNanos;
  private final String basis;

  /**
   * @param wattsPerCore power of one busy CPU
   * @param cpuNanos the process's cumulative CPU time in nanoseconds
   * @param basis where {@code wattsPerCore} came from, for the label
   */
  public CpuTimeEnergyMeter(double wattsPerCore, LongSupplier cpuNanos, String basis) {
    if (!(wattsPerCore > 0) || Double.isInfinite(wattsPerCore)) {
      throw new IllegalArgumentException(
          "expected a positive finite watts per core, found " + wattsPerCore);
    }
    this.wattsPerCore = wattsPerCore;
    this.cpuNanos = cpuNanos;
    this.basis = basis;
  }

  /**
   * The estimate for this process, with the watts from {@link #ENV} or the default.
   *
   * @throws IllegalArgumentException when the variable is set but is not a positive number
   * @throws UnsupportedOperationException when the JVM does not report process CPU time
   */
  public static CpuTimeEnergyMeter forThisProcess(String envValue) {
    double watts = DEFAULT_WATTS_PER_CORE;
    String basis = "default " + DEFAULT_WATTS_PER_CORE + " W/core (server TDP / threads)";
    if (envValue != null && !envValue.isBlank()) {
      try {
        watts = Double.parseDouble(envValue.trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            ENV + " must be watts per core, a positive number; found '" + envValue + "'");
      }
      if (!(watts > 0) || Double.isInfinite(watts)) {
        throw new IllegalArgumentException(
            ENV + " must be a positive number of watts, found " + envValue);
      }
      basis = ENV + "=" + envValue.trim();
    }
    if (schedstatNanos() > 0) {
      return new CpuTimeEnergyMeter(
          watts, CpuTimeEnergyMeter::schedstatNanos, basis + "; clock: per-thread schedstat");
    }
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    if (!(os instanceof com.sun.management.OperatingSystemMXBean sun)
        || sun.getProcessCpuTime() < 0) {
      throw new UnsupportedOperationException(
          "not supported: process CPU time on this JVM (" + os.getClass().getName() + ")");
    }
    return new CpuTimeEnergyMeter(
        watts, sun::getProcessCpuTime, basis + "; clock: JVM process CPU time");
  }

  private static final Path TASKS = Path.of("/proc/self/task");

  /**
   * Nanoseconds on CPU of this process's live threads (first field of each {@code schedstat}), or
   * -1 where /proc does not tell.
   */
  static long schedstatNanos() {
    if (!Files.isDirectory(TASKS)) {
      return -1;
    }
    long sum = 0;
    try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
      for (Path task : tasks) {
        String line;
        try {
          line = Files.readString(task.resolve("schedstat"));
        } catch (IOException e) {
          continue; // the thread exited between listing and reading
        }
        int space = line.indexOf(' ');
        sum += Long.parseLong(space < 0 ? line.trim() : line.substring(0, space));
      }
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
    return sum;
  }

  @Override
  public Kind kind() {
    return Kind.ESTIMATED;
  }

  @Override
  public String source() {
    return String.format(
        Locale.ROOT,
        "cpu-time × W/core: process CPU time × %.2f W per busy CPU (%s)",
        wattsPerCore,
        basis);
  }

  @Override
  public Interval start() {
    long start = cpuNanos.getAsLong();
    // max(0, ..): a thread that exited takes its time out of the schedstat sum.
    return () -> joules(Math.max(0, cpuNanos.getAsLong() - start), wattsPerCore);
  }

  /** Joules of {@code cpuNanos} of CPU time at {@code wattsPerCore}. */
  static double joules(long cpuNanos, double wattsPerCore) {
    return cpuNanos / 1e9 * wattsPerCore;
  }
}
