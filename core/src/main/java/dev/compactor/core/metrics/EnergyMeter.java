package dev.compactor.core.metrics;

import java.util.Locale;

/**
 * A source of energy figures: a hardware counter read out ({@link Kind#MEASURED}) or a figure
 * computed from something else ({@link Kind#ESTIMATED}). Every value reported from a meter carries
 * its {@link #kind} and {@link #source}, so nobody reads an estimate as a measurement.
 */
public interface EnergyMeter extends AutoCloseable {

  /** Whether the joules come from a counter or sensor, or from a model of power. */
  enum Kind {
    MEASURED,
    ESTIMATED;

    /** {@code measured} or {@code estimated}, as events and the model card spell it. */
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  Kind kind();

  /** What the figures are, e.g. {@code RAPL package energy (intel-rapl:0), whole CPU package}. */
  String source();

  /** {@code <kind>: <source>}, the label shown next to every figure. */
  default String label() {
    return kind().label() + ": " + source();
  }

  /** Starts an interval now. */
  Interval start();

  /** An interval of time over which energy is counted. */
  interface Interval {
    /** Joules used from {@link #start} until now. */
    double joules();
  }

  /** Releases what the meter holds (a sampling process); meters without any do nothing. */
  @Override
  default void close() {}

  /** A meter that cannot work here, with the reason. */
  final class Unavailable extends Exception {
    public Unavailable(String why) {
      super(why);
    }
  }
}
