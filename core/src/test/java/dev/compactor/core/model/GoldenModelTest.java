package dev.compactor.core.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/** The Java forward against the plain-PyTorch reference, case by case. */
class GoldenModelTest {

  private static final String HINT =
      "if every position is off check RMSNorm/LayerNorm eps and the head (tied?); if only later"
          + " positions are off check RoPE (rotate_half, theta) or the causal mask; if one layer type"
          + " is off check biases, GQA repeat order, or the Conv1D [in,out] layout";

  @TestFactory
  Stream<DynamicTest> residentLogitsMatchReference() {
    return Golden.CASES.stream()
        .map(
            name ->
                DynamicTest.dynamicTest(
                    name,
                    () -> {
                      try (Golden g = new Golden(name);
                          Transformer model = Transformer.load(g.dir, Device.cpu());
                          NDManager m = NDManager.newBaseManager()) {
                        g.assertClose("logits", model.logits(m, g.inputIds(m)), HINT);
                      }
                    }));
  }

  static List<String> cases() {
    return Golden.CASES;
  }

  static NDArray logits(Golden g, CausalLM model, NDManager m) throws IOException {
    return model.logits(m, g.inputIds(m));
  }
}
