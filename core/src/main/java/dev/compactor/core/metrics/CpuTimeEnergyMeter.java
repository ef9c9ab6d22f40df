package dev.compactor.core.metrics;

import java.lang.management.ManagementFactory;
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
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    if (!(os instanceof com.sun.management.OperatingSystemMXBean sun)
        || sun.getProcessCpuTime() < 0) {
      throw new UnsupportedOperationException(
          "not supported: process CPU time on this JVM (" + os.getClass().getName() + ")");
    }
    return new CpuTimeEnergyMeter(watts, sun::getProcessCpuTime, basis);
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
    return () -> joules(cpuNanos.getAsLong() - start, wattsPerCore);
  }

  /** Joules of {@code cpuNanos} of CPU time at {@code wattsPerCore}. */
  static double joules(long cpuNanos, double wattsPerCore) {
    return cpuNanos / 1e9 * wattsPerCore;
  }
}
