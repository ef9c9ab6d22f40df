package dev.compactor.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import org.junit.jupiter.api.Test;

/** Which thread counts libtorch gets, and that the running engine actually uses them. */
class TorchThreadsTest {

  @Test
  void availableProcessorsUnlessTheEnvironmentOrAPropertySaysOtherwise() {
    assertEquals(
        new TorchThreads.Setting(6, 1, "available processors"),
        TorchThreads.choose(null, null, null, 6));
    assertEquals(
        new TorchThreads.Setting(2, 1, TorchThreads.ENV), TorchThreads.choose(" 2 ", null, "", 6));
    assertEquals(
        new TorchThreads.Setting(3, 2, "-D" + TorchThreads.INTRA_OP_PROPERTY),
        TorchThreads.choose("2", "3", "2", 6));
    assertEquals(1, TorchThreads.choose(null, null, null, 0).intraOp(), "never zero threads");
  }

  @Test
  void aBadValueIsNamed() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> TorchThreads.choose("two", null, null, 2));
    assertTrue(e.getMessage().contains("COMPACTOR_TORCH_THREADS must be a positive integer"));
    assertThrows(IllegalArgumentException.class, () -> TorchThreads.choose("0", null, null, 2));
  }

  @Test
  void theEngineRunsWithTheChosenIntraOpCount() {
    TorchThreads.Setting s = TorchThreads.configure();
    try (NDManager m = NDManager.newBaseManager()) {
      m.ones(new ai.djl.ndarray.types.Shape(2, 2))
          .matMul(m.ones(new ai.djl.ndarray.types.Shape(2, 2)));
      assertEquals(s.intraOp(), JniUtils.getNumThreads());
      assertEquals(s, TorchThreads.configure(), "decided once per JVM");
    }
  }
}
