package dev.compactor.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class DevicesTest {
  private static StageConfig config(String device) {
    Map<String, String> env = new HashMap<>();
    env.put("COMPACTOR_STAGE", "quantize");
    env.put("COMPACTOR_S3_ACCESS_KEY", "ak");
    env.put("COMPACTOR_S3_SECRET_KEY", "very-secret");
    env.put("COMPACTOR_DEVICE", device);
    return StageConfig.load(env, Optional.empty());
  }

  private static final Stage CPU_ONLY = ctx -> StageResult.withoutArtifact(Map.of());

  @Test
  void cpuIsAccepted() {
    assertEquals("cpu", Devices.resolve(config("cpu"), CPU_ONLY));
  }

  @Test
  void aCpuOnlyStageRefusesAGpuInsteadOfIgnoringIt() {
    for (String gpu : new String[] {"gpu", "cuda:1"}) {
      Devices.UnavailableDeviceException e =
          assertThrows(
              Devices.UnavailableDeviceException.class,
              () -> Devices.resolve(config(gpu), CPU_ONLY));
      assertTrue(
          e.getMessage().startsWith("stage quantize cannot run on COMPACTOR_DEVICE=" + gpu)
              && e.getMessage().contains("runs on the CPU only")
              && e.getMessage().contains("set COMPACTOR_DEVICE=cpu"),
          e.getMessage());
    }
  }

  @Test
  void badValuesAreRejected() {
    for (String bad : new String[] {"tpu", "cuda:x", "GPU0", ""}) {
      StageConfig.ConfigException e =
          assertThrows(StageConfig.ConfigException.class, () -> config(bad));
      assertTrue(e.getMessage().contains("COMPACTOR_DEVICE"), e.getMessage());
    }
  }
}
