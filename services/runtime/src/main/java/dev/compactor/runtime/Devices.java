package dev.compactor.runtime;

/**
 * Checks {@code COMPACTOR_DEVICE} against what the stage can really compute on, before its service
 * starts: a stage service asked for a GPU it cannot use refuses to start with a message saying why
 * (the engine's native library is the CPU build, the stage's math is CPU-only Java, ...) instead of
 * quietly running on the CPU. The runtime knows no tensor engine, so each {@link Stage} answers for
 * itself ({@link Stage#checkDevice}); stages whose math runs on DJL check the engine there.
 */
public final class Devices {
  private Devices() {}

  /** The device asked for can not be used by this stage here. */
  public static final class UnavailableDeviceException extends IllegalStateException {
    public UnavailableDeviceException(String message) {
      super(message);
    }
  }

  /**
   * The configured device, once {@code stage} has accepted it.
   *
   * @throws UnavailableDeviceException naming the stage, the device and what is missing
   */
  public static String resolve(StageConfig config, Stage stage) {
    String device = config.get(StageConfig.DEVICE_NAME);
    try {
      stage.checkDevice(device);
    } catch (RuntimeException e) {
      throw new UnavailableDeviceException(
          "stage "
              + config.get(StageConfig.STAGE)
              + " cannot run on COMPACTOR_DEVICE="
              + device
              + ": "
              + e.getMessage());
    }
    return device;
  }

  /** Whether {@code device} names the CPU (the only device of a CPU-only stage). */
  public static boolean isCpu(String device) {
    return "cpu".equals(device);
  }

  /**
   * The refusal of a stage whose math has no GPU path.
   *
   * @param what which computation runs on the CPU, e.g. "quantization (GPTQ, AWQ, RTN, GGUF)"
   */
  public static void requireCpu(String device, String what) {
    if (!isCpu(device)) {
      throw new UnavailableDeviceException(
          what
              + " runs on the CPU only (plain Java, no GPU path); set COMPACTOR_DEVICE=cpu for"
              + " this stage");
    }
  }
}
