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
