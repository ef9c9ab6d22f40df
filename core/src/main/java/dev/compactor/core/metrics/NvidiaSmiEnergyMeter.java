package dev.compactor.core.metrics;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Measured GPU energy: board power read by {@code nvidia-smi --query-gpu=power.draw} every {@code
 * periodMs} in a background process and integrated over time (trapezoids between samples, each
 * sample stamped when its line arrives). Chosen over NVML's total-energy counter because it needs
 * no native binding in the JVM; the price is resolution: intervals much shorter than the period are
 * interpolated, and on A100/H100 the driver's power figure is itself an average over part of each
 * second (Yang et al., arXiv 2312.02741), so short runs are rough. Board power only: the host CPU's
 * energy is not in it.
 */
public final class NvidiaSmiEnergyMeter implements EnergyMeter {

  private final int gpu;
  private final int periodMs;
  private final Process sampler;
  private final Thread reader;
  private final List<long[]> samples = new ArrayList<>(); // {nanoTime, milliwatts}

  private NvidiaSmiEnergyMeter(String executable, int gpu, int periodMs) throws IOException {
    this.gpu = gpu;
    this.periodMs = periodMs;
    this.sampler =
        new ProcessBuilder(
                executable,
                "--query-gpu=power.draw",
                "--format=csv,noheader,nounits",
                "-i",
                Integer.toString(gpu),
                "-lms",
                Integer.toString(periodMs))
            .redirectErrorStream(true)
            .start();
    this.reader = new Thread(this::readSamples, "nvidia-smi-power-" + gpu);
    reader.setDaemon(true);
    reader.start();
  }

  /**
   * Starts sampling GPU {@code gpu}'s power when {@code executable} reports it.
   *
   * @throws EnergyMeter.Unavailable when nvidia-smi is missing, fails, or says power.draw is N/A
   */
  public static NvidiaSmiEnergyMeter open(String executable, int gpu, int periodMs)
      throws Unavailable {
    String first;
    try {
      Process p =
          new ProcessBuilder(
                  executable,
                  "--query-gpu=power.draw",
                  "--format=csv,noheader,nounits",
                  "-i",
                  Integer.toString(gpu))
              .redirectErrorStream(true)
              .start();
      first = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new Unavailable(executable + " failed for GPU " + gpu + ": " + first);
      }
    } catch (IOException e) {
      throw new Unavailable("no " + executable + " here (" + e.getMessage() + ")");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Unavailable("interrupted while asking " + executable);
    }
    if (Double.isNaN(watts(first))) {
      throw new Unavailable(
          executable + " gives no power.draw for GPU " + gpu + " (answered '" + first + "')");
    }
    try {
      return new NvidiaSmiEnergyMeter(executable, gpu, periodMs);
    } catch (IOException e) {
      throw new Unavailable("cannot start " + executable + ": " + e.getMessage());
    }
  }

  /** Watts from one line of {@code power.draw} output, NaN for {@code [N/A]} or anything else. */
  static double watts(String line) {
    try {
      return Double.parseDouble(line.trim());
    } catch (NumberFormatException e) {
      return Double.NaN;
    }
  }

  private void readSamples() {
    try (BufferedReader r =
        new BufferedReader(
            new InputStreamReader(sampler.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        double w = watts(line);
        if (!Double.isNaN(w)) {
          synchronized (samples) {
            samples.add(new long[] {System.nanoTime(), Math.round(w * 1000)});
            samples.notifyAll();
          }
        }
      }
    } catch (IOException e) {
      // The process was stopped by close(); intervals ending later fail in joules().
    }
  }

  @Override
  public Kind kind() {
    return Kind.MEASURED;
  }

  @Override
  public String source() {
    return "nvidia-smi power.draw of GPU "
        + gpu
        + " sampled every "
        + periodMs
        + " ms and integrated, board power only (host CPU not included)";
  }

  @Override
  public Interval start() {
    long t0 = System.nanoTime();
    return () -> {
      long t1 = System.nanoTime();
      long[][] copy;
      synchronized (samples) {
        long deadline = t1 + TimeUnit.MILLISECONDS.toNanos(4L * periodMs + 1000);
        while (lastTime() < t1 && System.nanoTime() < deadline && sampler.isAlive()) {
          try {
            samples.wait(periodMs);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            break;
          }
        }
        copy = samples.toArray(long[][]::new);
      }
      if (copy.length == 0) {
        throw new IllegalStateException("nvidia-smi delivered no power sample");
      }
      long[] t = new long[copy.length];
      double[] w = new double[copy.length];
      for (int i = 0; i < copy.length; i++) {
        t[i] = copy[i][0];
        w[i] = copy[i][1] / 1000.0;
      }
      return integrate(t, w, t0, t1);
    };
  }

  private long lastTime() {
    return samples.isEmpty() ? Long.MIN_VALUE : samples.get(samples.size() - 1)[0];
  }

  /**
   * Joules between {@code from} and {@code to} (nanoTime) of a power curve given by samples ({@code
   * t} ascending, {@code w} watts), linear between samples and held flat before the first and after
   * the last.
   */
  static double integrate(long[] t, double[] w, long from, long to) {
    if (to <= from) {
      return 0;
    }
    double joules = 0;
    long[] edges = new long[t.length + 2];
    edges[0] = from;
    int n = 1;
    for (long ti : t) {
      if (ti > from && ti < to) {
        edges[n++] = ti;
      }
    }
    edges[n++] = to;
    for (int i = 0; i + 1 < n; i++) {
      double a = powerAt(t, w, edges[i]);
      double b = powerAt(t, w, edges[i + 1]);
      joules += (a + b) / 2 * ((edges[i + 1] - edges[i]) / 1e9);
    }
    return joules;
  }

  private static double powerAt(long[] t, double[] w, long at) {
    if (at <= t[0]) {
      return w[0];
    }
    for (int i = 1; i < t.length; i++) {
      if (at <= t[i]) {
        double f = (double) (at - t[i - 1]) / (t[i] - t[i - 1]);
        return w[i - 1] + f * (w[i] - w[i - 1]);
      }
    }
    return w[t.length - 1];
  }

  @Override
  public void close() {
    sampler.destroy();
    try {
      reader.join(2000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
