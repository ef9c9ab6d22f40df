package dev.compactor.core.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.distill.Trainable;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.model.WeightTransform;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;

/**
 * A LoRA adapter over a frozen base model: for every targeted decoder linear {@code W [out, in]} a
 * pair {@code A [r, in]}, {@code B [out, r]}, and a pass computes with {@code W + s·B·A}, {@code s
 * = alpha / r} (PEFT's {@code lora_alpha / r}). Fresh adapters start as PEFT starts them: A
 * kaiming-uniform with {@code a = sqrt(5)} (uniform in {@code ±1/sqrt(in)}), seeded, and B = 0, so
 * the adapted model begins exactly as the base.
 *
 * <p>The base is frozen: only A and B are {@link Trainable#parameters()}, so a pruned base's zeros
 * and a quantized base's grid values are never touched by training; the adapter is a separate
 * correction on top. A <em>masked</em> adapter computes with {@code W + M⊙(s·B·A)}, {@code M} the
 * base's non-zero pattern, so that merging it ({@link #mergeInto}) keeps exactly the base's zeros.
 * PEFT and vLLM apply a delta unmasked: a masked adapter is exact only merged, or loaded back by
 * this project (which re-applies the mask, see {@link PeftAdapterFiles}).
 *
 * <p>Arrays live in this adapter's own manager on the base's device; close the adapter when done.
 */
public final class LoraAdapter implements AutoCloseable {

  /**
   * One adapted linear.
   *
   * @param layer decoder layer index
   * @param tensor the weight's name inside the layer, e.g. {@code self_attn.q_proj.weight}
   * @param module the linear's full Hugging Face module name, e.g. {@code
   *     model.layers.0.self_attn.q_proj} (PEFT's keys are built from it)
   * @param out rows of W
   * @param in columns of W
   */
  public record Target(int layer, String tensor, String module, long out, long in) {

    /** PEFT's key of A, {@code base_model.model.<module>.lora_A.weight}. */
    public String keyA() {
      return PeftAdapterFiles.KEY_PREFIX + module + ".lora_A.weight";
    }

    /** PEFT's key of B. */
    public String keyB() {
      return PeftAdapterFiles.KEY_PREFIX + module + ".lora_B.weight";
    }

    /** The short module name PEFT's {@code target_modules} lists, e.g. {@code q_proj}. */
    public String shortName() {
      String m = tensor.substring(0, tensor.length() - ".weight".length());
      return m.substring(m.lastIndexOf('.') + 1);
    }
  }

  private static final class Pair {
    final Target target;
    final NDArray a;
    final NDArray b;
    NDArray mask;

    Pair(Target target, NDArray a, NDArray b) {
      this.target = target;
      this.a = a;
      this.b = b;
    }
  }

  private final int rank;
  private final float alpha;
  private final boolean masked;
  private final NDManager manager;
  private final NDArray scale;
  private final Map<String, Pair> byTensor = new LinkedHashMap<>();
  private final Map<String, NDArray> parameters = new LinkedHashMap<>();

  private LoraAdapter(
      Transformer base,
      int rank,
      float alpha,
      boolean masked,
      List<Target> targets,
      Map<String, float[]> values) {
    this(
        base.device(),
        rank,
        alpha,
        masked,
        targets,
        values,
        t -> base.parameters().get(base.layerPrefix(t.layer()) + t.tensor()));
  }

  private LoraAdapter(
      Device device,
      int rank,
      float alpha,
      boolean masked,
      List<Target> targets,
      Map<String, float[]> values,
      Function<Target, NDArray> baseWeight) {
    this.rank = rank;
    this.alpha = alpha;
    this.masked = masked;
    this.manager = NDManager.newBaseManager(device);
    try {
      this.scale = manager.create(alpha / rank);
      for (Target t : targets) {
        NDArray a = manager.create(values.get(t.keyA()), new Shape(rank, t.in()));
        NDArray b = manager.create(values.get(t.keyB()), new Shape(t.out(), rank));
        Pair p = new Pair(t, a, b);
        if (masked) {
          NDArray w = baseWeight.apply(t);
          try (NDArray zero = manager.zeros(new Shape());
              NDArray nonZero = w.neq(zero);
              NDArray dense = nonZero.all()) {
            if (dense.getBoolean()) {
              p.mask = null;
            } else {
              // boolean: a quarter of a float mask; torch multiplies floats by it
              p.mask = nonZero.duplicate();
              p.mask.attach(manager);
            }
          }
        }
        byTensor.put(key(t.layer(), t.tensor()), p);
        parameters.put(t.keyA(), a);
        parameters.put(t.keyB(), b);
      }
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /**
   * A fresh adapter on {@code base}: A seeded kaiming-uniform, B zero.
   *
   * @param masked compute with the delta masked to the base's non-zeros (for a merged export that
   *     keeps a pruned base's sparsity)
   */
  public static LoraAdapter create(Transformer base, LoraSpec spec, boolean masked) {
    List<Target> targets = targets(base, spec.targets());
    Random random = new Random(spec.seed());
    Map<String, float[]> values = new LinkedHashMap<>();
    for (Target t : targets) {
      float[] a = new float[Math.toIntExact(spec.rank() * t.in())];
      // kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in)
      double bound = 1.0 / Math.sqrt(t.in());
      for (int i = 0; i < a.length; i++) {
        a[i] = (float) ((2 * random.nextDouble() - 1) * bound);
      }
      values.put(t.keyA(), a);
      values.put(t.keyB(), new float[Math.toIntExact(t.out() * spec.rank())]);
    }
    return new LoraAdapter(base, spec.rank(), spec.alpha(), masked, targets, values);
  }

  /**
   * An adapter with the given matrices, keyed by PEFT's names ({@link Target#keyA()}, {@link
   * Target#keyB()}), row-major; every target of {@code targets} needs both.
   */
  static LoraAdapter of(
      Transformer base,
      int rank,
      float alpha,
      boolean masked,
      List<Target> targets,
      Map<String, float[]> values) {
    for (Target t : targets) {
      check(values, t.keyA(), rank * t.in());
      check(values, t.keyB(), t.out() * rank);
    }
    return new LoraAdapter(base, rank, alpha, masked, targets, values);
  }

  /**
   * An adapter over stand-alone weights ({@code baseWeight} gives each target's W, read only for a
   * masked adapter's mask): for tests of the transform on a single linear.
   */
  static LoraAdapter of(
      Device device,
      int rank,
      float alpha,
      boolean masked,
      List<Target> targets,
      Map<String, float[]> values,
      Function<Target, NDArray> baseWeight) {
    for (Target t : targets) {
      check(values, t.keyA(), rank * t.in());
      check(values, t.keyB(), t.out() * rank);
    }
    return new LoraAdapter(device, rank, alpha, masked, targets, values, baseWeight);
  }

  private static void check(Map<String, float[]> values, String key, long n) {
    float[] v = values.get(key);
    if (v == null || v.length != n) {
      throw new IllegalArgumentException(
          key + ": expected " + n + " values, found " + (v == null ? "none" : v.length));
    }
  }

  /**
   * The decoder linears of {@code base} whose module name is one of {@code modules}, layer by layer
   * in checkpoint order. Every module must match at least one linear.
   */
  public static List<Target> targets(Transformer base, List<String> modules) {
    ModelConfig c = base.config();
    if (c.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: LoRA on " + c.modelType() + " (its Conv1D weights are transposed)");
    }
    if (c.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: LoRA on the mixture-of-experts model " + c.modelType());
    }
    List<Target> out = new ArrayList<>();
    Set<String> matched = new LinkedHashSet<>();
    for (int i = 0; i < c.numLayers(); i++) {
      String prefix = base.layerPrefix(i);
      for (Map.Entry<String, NDArray> e : base.parameters().entrySet()) {
        String name = e.getKey();
        if (!name.startsWith(prefix) || !name.endsWith(".weight")) {
          continue;
        }
        long[] shape = e.getValue().getShape().getShape();
        if (shape.length != 2) {
          continue;
        }
        String tensor = name.substring(prefix.length());
        String module = name.substring(0, name.length() - ".weight".length());
        Target t = new Target(i, tensor, module, shape[0], shape[1]);
        if (modules.contains(t.shortName())) {
          out.add(t);
          matched.add(t.shortName());
        }
      }
    }
    for (String m : modules) {
      if (!matched.contains(m)) {
        throw new IllegalArgumentException(
            "target module '"
                + m
                + "' matches no decoder linear of this "
                + c.modelType()
                + " model");
      }
    }
    return out;
  }

  /** Rank r. */
  public int rank() {
    return rank;
  }

  /** PEFT's lora_alpha. */
  public float alpha() {
    return alpha;
  }

  /** The factor the delta is scaled by, {@code alpha / r}. */
  public float scaling() {
    return alpha / rank;
  }

  /** Whether the delta is masked to the base's non-zeros (exact only merged or loaded here). */
  public boolean masked() {
    return masked;
  }

  /** The adapted linears, in checkpoint order. */
  public List<Target> targets() {
    List<Target> out = new ArrayList<>();
    byTensor.values().forEach(p -> out.add(p.target));
    return out;
  }

  /**
   * The distinct short module names adapted (PEFT's {@code target_modules}), in first-seen order.
   */
  public List<String> targetModules() {
    Set<String> names = new LinkedHashSet<>();
    byTensor.values().forEach(p -> names.add(p.target.shortName()));
    return List.copyOf(names);
  }

  /** A and B of every target by PEFT's key: the live arrays the optimizer updates. */
  public Map<String, NDArray> parameters() {
    return Collections.unmodifiableMap(parameters);
  }

  /** Adapter parameter count (A and B of every target). */
  public long parameterCount() {
    long n = 0;
    for (NDArray p : parameters.values()) {
      n += p.getShape().size();
    }
    return n;
  }

  /**
   * What a pass computes with: {@code W + s·B·A} (masked: {@code W + M⊙(s·B·A)}) for every target,
   * the stored tensor for everything else. Every new array lives in the pass's scope.
   */
  public WeightTransform transform() {
    return (layer, name, stored, scope) -> {
      Pair p = byTensor.get(key(layer, name));
      if (p == null) {
        return stored;
      }
      return delta(p, scope).add(stored);
    };
  }

  /** {@code s·B·A} (masked where the adapter is) in {@code scope}. */
  private NDArray delta(Pair p, NDManager scope) {
    NDArray ba = p.b.matMul(p.a);
    ba.attach(scope);
    NDArray scaled = ba.mul(scale);
    return p.mask == null ? scaled : scaled.mul(p.mask);
  }

  /**
   * The adapter as {@link dev.compactor.core.distill.Distiller} trains it: A and B through the
   * base's forward with {@link #transform()}; the base's own arrays are not parameters, so nothing
   * of the base moves (and no zero mask is needed on the adapter matrices).
   */
  public Trainable trainable(Transformer base) {
    WeightTransform transform = transform();
    return new Trainable() {
      @Override
      public Transformer model() {
        return base;
      }

      @Override
      public Map<String, NDArray> parameters() {
        return LoraAdapter.this.parameters();
      }

      @Override
      public NDArray forward(NDManager m, NDArray tokens) {
        return base.forward(m, tokens, transform);
      }

      @Override
      public Set<String> keepZeros() {
        return Set.of();
      }
    };
  }

  /**
   * Adds the (masked) delta into {@code base}'s weights in place: afterwards the plain base
   * computes what base + adapter computed. With a masked adapter every exact zero of the base stays
   * an exact zero.
   */
  public void mergeInto(Transformer base) {
    for (Pair p : byTensor.values()) {
      NDArray w = base.parameters().get(base.layerPrefix(p.target.layer()) + p.target.tensor());
      if (w == null
          || w.getShape().get(0) != p.target.out()
          || w.getShape().get(1) != p.target.in()) {
        throw new IllegalArgumentException(
            "merge: " + p.target.module() + " is not in this model with the adapter's shape");
      }
      try (NDManager scope = manager.newSubManager()) {
        w.addi(delta(p, scope));
      }
    }
  }

  /** Row-major values of every parameter by PEFT's key (for writing). */
  Map<String, float[]> values() {
    Map<String, float[]> out = new LinkedHashMap<>();
    parameters.forEach((k, v) -> out.put(k, v.toFloatArray()));
    return out;
  }

  private static String key(int layer, String tensor) {
    return layer + ":" + tensor;
  }

  @Override
  public void close() {
    manager.close();
  }
}
