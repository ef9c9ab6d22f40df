package dev.compactor.core.metrics;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Memory the process uses, native tensors included: resident set size now and at its peak (Linux
 * {@code VmRSS}/{@code VmHWM} from /proc/self/status), and the JVM heap now and at its peak. Fields
 * are -1 where the platform does not tell.
 */
public record PeakMemory(
    long peakRssBytes, long rssBytes, long heapUsedBytes, long peakHeapBytes, long heapMaxBytes) {

  private static final Path STATUS = Path.of("/proc/self/status");
  private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");

  /**
   * Starts measuring one step's own peak resident memory: on Linux, writing {@code 5} to {@code
   * /proc/self/clear_refs} resets the process's high-water mark {@code VmHWM} to its current RSS,
   * so {@code VmHWM} read at the end of the step is the step's peak rather than the process's
   * lifetime peak (which, in a long-lived worker, is whatever the largest earlier job reached).
   * Where the reset is impossible (not Linux, a kernel or sandbox refusing the write), the window
   * reports no peak at all instead of the lifetime figure, and says why.
   *
   * <p>The mark is per process: in a JVM running several steps at once (the demo runs every stage
   * in one JVM), another step's reset restarts the window, so the figure then covers the time since
   * the latest reset.
   */
  public static StepWindow startStep() {
    String why;
    try {
      if (!Files.isWritable(CLEAR_REFS)) {
        why = CLEAR_REFS + " is not writable here (not Linux, or not allowed)";
      } else {
        Files.writeString(CLEAR_REFS, "5");
        return new StepWindow(true, "VmHWM since the step started (reset via " + CLEAR_REFS + ")");
      }
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      why = "resetting VmHWM via " + CLEAR_REFS + " failed: " + e.getMessage();
    }
    return new StepWindow(false, "not measured: " + why);
  }

  /**
   * One step's memory window, from {@link #startStep()}.
   *
   * @param reset whether the high-water mark was reset at the start, so that {@link #peakRssBytes}
   *     is this step's own peak
   * @param measures what {@link #peakRssBytes} measures, or why it is not measured
   */
  public record StepWindow(boolean reset, String measures) {
    /** Peak RSS since the window started, in bytes; -1 when the mark could not be reset. */
    public long peakRssBytes() {
      return reset ? snapshot().peakRssBytes() : -1;
    }
  }

  /** The current figures of this process. */
  public static PeakMemory snapshot() {
    String status = "";
    try {
      if (Files.isReadable(STATUS)) {
        status = Files.readString(STATUS);
      }
    } catch (IOException e) {
      status = "";
    }
    Runtime rt = Runtime.getRuntime();
    long peakHeap = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP && pool.getPeakUsage() != null) {
        peakHeap += pool.getPeakUsage().getUsed();
      }
    }
    return new PeakMemory(
        kib(status, "VmHWM:"),
        kib(status, "VmRSS:"),
        rt.totalMemory() - rt.freeMemory(),
        peakHeap,
        rt.maxMemory());
  }

  /** Parses a /proc status field such as {@code VmHWM: 123456 kB} into bytes, -1 if absent. */
  static long kib(String status, String field) {
    for (String line : status.split("\n")) {
      if (line.startsWith(field)) {
        String[] parts = line.substring(field.length()).trim().split("\\s+");
        return Long.parseLong(parts[0]) * 1024;
      }
    }
    return -1;
  }
}
