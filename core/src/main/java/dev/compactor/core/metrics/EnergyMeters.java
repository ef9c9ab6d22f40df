package dev.compactor.core.metrics;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Picks the best energy meter this machine offers for a computation on a given device. */
public final class EnergyMeters {
  private EnergyMeters() {}

  /**
   * The meter chosen and why the better ones were not.
   *
   * @param meter the meter to use
   * @param notUsed one line per better meter that is unavailable here, with the reason
   */
  public record Choice(EnergyMeter meter, List<String> notUsed) {
    public Choice {
      notUsed = List.copyOf(notUsed);
    }
  }

  /**
   * For a computation on GPU {@code gpuIndex} (or on the CPU when negative): NVIDIA board power
   * through nvidia-smi for a GPU; else RAPL package counters under {@code powercapRoot}; else the
   * CPU-time estimate with watts from {@code wattsPerCoreEnv}. On a GPU without nvidia-smi the CPU
   * figure leaves the GPU out, and its label says so.
   */
  public static Choice choose(int gpuIndex, Path powercapRoot, String wattsPerCoreEnv) {
    List<String> notUsed = new ArrayList<>();
    if (gpuIndex >= 0) {
      try {
        return new Choice(NvidiaSmiEnergyMeter.open("nvidia-smi", gpuIndex, 100), notUsed);
      } catch (EnergyMeter.Unavailable e) {
        notUsed.add("GPU power (nvidia-smi): " + e.getMessage());
      }
    }
    EnergyMeter cpu;
    try {
      cpu = RaplEnergyMeter.open(powercapRoot);
    } catch (EnergyMeter.Unavailable e) {
      notUsed.add("RAPL: " + e.getMessage());
      cpu = CpuTimeEnergyMeter.forThisProcess(wattsPerCoreEnv);
    }
    if (gpuIndex >= 0) {
      cpu = new CpuOnly(cpu);
    }
    return new Choice(cpu, notUsed);
  }

  /** This machine's choice for a computation on the CPU ({@code gpuIndex} -1) or a GPU. */
  public static Choice forThisMachine(int gpuIndex) {
    return choose(gpuIndex, RaplEnergyMeter.SYSFS, System.getenv(CpuTimeEnergyMeter.ENV));
  }

  /** A CPU meter used for a GPU computation: same figures, a label that says the GPU is missing. */
  private record CpuOnly(EnergyMeter cpu) implements EnergyMeter {
    @Override
    public Kind kind() {
      return cpu.kind();
    }

    @Override
    public String source() {
      return cpu.source() + "; the computation ran on a GPU whose energy is NOT included";
    }

    @Override
    public Interval start() {
      return cpu.start();
    }

    @Override
    public void close() {
      cpu.close();
    }
  }
}
