package dev.compactor.core.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import org.junit.jupiter.api.Test;

class ComputeDeviceTest {
  @Test
  void cpuIsAccepted() {
    assertEquals(Device.cpu(), ComputeDevice.resolve("cpu"));
  }

  @Test
  void badNamesAreRejected() {
    for (String bad : new String[] {"", "tpu", "cuda:", "cuda:-1", "gpu0", "cpu:1"}) {
      ComputeDevice.UnavailableException e =
          assertThrows(ComputeDevice.UnavailableException.class, () -> ComputeDevice.resolve(bad));
      assertTrue(e.getMessage().contains("expected cpu, gpu or cuda:<n>"), e.getMessage());
    }
    assertEquals(3, ComputeDevice.gpuIndex("cuda:3"));
    assertEquals(0, ComputeDevice.gpuIndex("gpu"));
  }

  @Test
  void aMissingGpuIsRefusedNamingTheNativeLibrary() {
    assumeTrue(Engine.getInstance().getGpuCount() == 0, "this machine has a GPU");
    ComputeDevice.UnavailableException e =
        assertThrows(ComputeDevice.UnavailableException.class, () -> ComputeDevice.resolve("gpu"));
    assertEquals("cpu", ComputeDevice.pytorchFlavor(), "the build's native jar is the CPU one");
    assertTrue(
        e.getMessage().startsWith("COMPACTOR_DEVICE=gpu but the PyTorch engine here")
            && e.getMessage().contains("CPU build (pytorch-native-cpu)")
            && e.getMessage().contains("pytorch-native-cu124"),
        e.getMessage());
  }

  @Test
  void aCudaBuildWithoutThatGpuSaysHowManyItSees() {
    String msg = ComputeDevice.missingGpu("cuda:2", 2, 1, Engine.getInstance(), "cu124");
    assertTrue(msg.contains("sees 1 GPU(s), so cuda:2 does not exist"), msg);
  }

  @Test
  void aPresentGpuComputes() {
    assumeTrue(Engine.getInstance().getGpuCount() > 0, "no GPU here");
    Device gpu = ComputeDevice.resolve("gpu");
    try (NDManager m = NDManager.newBaseManager(gpu)) {
      NDArray a = m.create(new float[] {1, 2, 3, 4}, new ai.djl.ndarray.types.Shape(2, 2));
      assertEquals(gpu, a.getDevice());
      assertEquals(30f, a.matMul(a.transpose()).getFloat(1, 1), 1e-5f);
    }
  }
}
