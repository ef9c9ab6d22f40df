package dev.compactor.core.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Adam with decoupled weight decay (Loshchilov and Hutter), step for step what {@code
 * torch.optim.AdamW} computes: {@code p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p
 * -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)}. It updates the given arrays in place (a
 * model's {@code parameters()}), reading their gradients; marks them as requiring gradients.
 *
 * <p>Run {@link #step} after the {@code GradientCollector} is closed: the updates must not be
 * recorded by autograd. Gradients are zeroed after each step (PyTorch accumulates them).
 */
public final class AdamW implements AutoCloseable {

  private final Map<String, NDArray> parameters;
  private final Map<String, Boolean> decays = new LinkedHashMap<>();
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private final NDManager state;
  private final Map<String, NDArray> m = new LinkedHashMap<>();
  private final Map<String, NDArray> v = new LinkedHashMap<>();
  private int steps;

  /**
   * @param decay which parameters (by name) get weight decay; commonly matrices but not norms and
   *     biases ({@link #matricesOnly(Map)})
   */
  public AdamW(
      Map<String, NDArray> parameters,
      double beta1,
      double beta2,
      double eps,
      double weightDecay,
      Predicate<String> decay) {
    if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps > 0 && weightDecay >= 0)) {
      throw new IllegalArgumentException(
          "AdamW: expected 0 <= betas < 1, eps > 0, weight decay >= 0; found "
              + beta1
              + ", "
              + beta2
              + ", "
              + eps
              + ", "
              + weightDecay);
    }
    if (parameters.isEmpty()) {
      throw new IllegalArgumentException("AdamW: no parameters to optimise");
    }
    this.parameters = new LinkedHashMap<>(parameters);
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.state = parameters.values().iterator().next().getManager().newSubManager();
    for (Map.Entry<String, NDArray> e : this.parameters.entrySet()) {
      e.getValue().setRequiresGradient(true);
      decays.put(e.getKey(), decay.test(e.getKey()));
      m.put(e.getKey(), state.zeros(e.getValue().getShape()));
      v.put(e.getKey(), state.zeros(e.getValue().getShape()));
    }
  }

  /** torch defaults: betas (0.9, 0.999), eps 1e-8, decay on every parameter. */
  public AdamW(Map<String, NDArray> parameters, double weightDecay) {
    this(parameters, 0.9, 0.999, 1e-8, weightDecay, name -> true);
  }

  /** A decay predicate for the usual LLM recipe: decay weight matrices, not norms or biases. */
  public static Predicate<String> matricesOnly(Map<String, NDArray> parameters) {
    return name -> parameters.get(name).getShape().dimension() >= 2;
  }

  /** One update with learning rate {@code lr} from the current gradients, which are then zeroed. */
  public void step(double lr) {
    steps++;
    double bias1 = 1 - Math.pow(beta1, steps);
    double bias2Sqrt = Math.sqrt(1 - Math.pow(beta2, steps));
    try (NDManager scope = state.newSubManager()) {
      for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
        NDArray p = e.getValue();
        NDArray g = p.getGradient();
        g.attach(scope);
        NDArray mt = m.get(e.getKey());
        NDArray vt = v.get(e.getKey());
        mt.tempAttach(scope);
        vt.tempAttach(scope);
        mt.muli((float) beta1).addi(g.mul((float) (1 - beta1)));
        vt.muli((float) beta2).addi(g.square().muli((float) (1 - beta2)));
        if (decays.get(e.getKey()) && weightDecay > 0) {
          p.muli((float) (1 - lr * weightDecay));
        }
        NDArray denominator = vt.sqrt().divi((float) bias2Sqrt).addi((float) eps);
        p.subi(mt.div(denominator).muli((float) (lr / bias1)));
        g.subi(g);
      }
    }
  }

  /** Number of steps taken. */
  public int steps() {
    return steps;
  }

  /** The optimised arrays, in order. */
  public List<NDArray> parameters() {
    return new ArrayList<>(parameters.values());
  }

  @Override
  public void close() {
    state.close();
  }
}
