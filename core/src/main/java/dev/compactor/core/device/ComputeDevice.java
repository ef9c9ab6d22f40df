package dev.compactor.core.device;

import ai.djl.Device;
import ai.djl.engine.Engine;
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns a device name ({@code cpu}, {@code gpu} = {@code cuda:0}, {@code cuda:<n>}) into a DJL
 * {@link Device} after checking that the engine on this classpath really has it. A GPU that is not
 * there is an error saying which engine and native library were found and what to install, never a
 * silent fallback to the CPU.
 */
public final class ComputeDevice {
  private static final Pattern NAME = Pattern.compile("cpu|gpu|cuda(?::(\\d+))?");

  /** Where DJL's PyTorch native jars describe themselves ({@code flavor=cpu}, {@code cu124}). */
  static final String PYTORCH_PROPERTIES = "native/lib/pytorch.properties";

  private ComputeDevice() {}

  /** A device name that is not {@code cpu}, {@code gpu} or {@code cuda:<n>}, or a missing GPU. */
  public static final class UnavailableException extends IllegalArgumentException {
    public UnavailableException(String message) {
      super(message);
    }
  }

  /**
   * Checks only the spelling: the GPU index of {@code name}, or -1 for {@code cpu}.
   *
   * @throws UnavailableException for a name that is none of the accepted ones
   */
  public static int gpuIndex(String name) {
    Matcher m = NAME.matcher(name == null ? "" : name.trim().toLowerCase(java.util.Locale.ROOT));
    if (!m.matches()) {
      throw new UnavailableException(
          "COMPACTOR_DEVICE: expected cpu, gpu or cuda:<n>, found '" + name + "'");
    }
    if (m.group().equals("cpu")) {
      return -1;
    }
    return m.group(1) == null ? 0 : Integer.parseInt(m.group(1));
  }

  /**
   * The DJL device for {@code name}, checked against the default engine's GPU count.
   *
   * @throws UnavailableException when the name is malformed or the engine has no such GPU
   */
  public static Device resolve(String name) {
    int gpu = gpuIndex(name);
    if (gpu < 0) {
      return Device.cpu();
    }
    Engine engine = Engine.getInstance();
    int count = engine.getGpuCount();
    if (gpu >= count) {
      throw new UnavailableException(missingGpu(name, gpu, count, engine, pytorchFlavor()));
    }
    return Device.gpu(gpu);
  }

  static String missingGpu(String name, int gpu, int count, Engine engine, String flavor) {
    String which = "the " + engine.getEngineName() + " engine here (" + engine.getVersion() + ")";
    if ("cpu".equals(flavor)) {
      return "COMPACTOR_DEVICE="
          + name
          + " but "
          + which
          + " is the CPU build (pytorch-native-cpu): install a CUDA build of the native library"
          + " (ai.djl.pytorch:pytorch-native-cu124:2.5.1:linux-x86_64 with pytorch-jni"
          + " 2.5.1-0.32.0 on DJL 0.32.0; no CUDA build exists for PyTorch 2.7.1), or point"
          + " PYTORCH_LIBRARY_PATH at a CUDA libtorch, or set COMPACTOR_DEVICE=cpu";
    }
    return "COMPACTOR_DEVICE="
        + name
        + " but "
        + which
        + (flavor == null ? "" : ", native build '" + flavor + "',")
        + " sees "
        + count
        + " GPU(s), so cuda:"
        + gpu
        + " does not exist: check the NVIDIA driver, CUDA_VISIBLE_DEVICES and that the native"
        + " library is a CUDA build, or set COMPACTOR_DEVICE=cpu";
  }

  /** The flavor of the PyTorch native jar on the classpath ({@code cpu}, {@code cu124}...). */
  static String pytorchFlavor() {
    try (InputStream in =
        ComputeDevice.class.getClassLoader().getResourceAsStream(PYTORCH_PROPERTIES)) {
      if (in == null) {
        return null;
      }
      Properties p = new Properties();
      p.load(in);
      return p.getProperty("flavor");
    } catch (IOException e) {
      return null;
    }
  }
}
