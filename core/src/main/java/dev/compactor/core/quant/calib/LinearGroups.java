package dev.compactor.core.quant.calib;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.util.ArrayList;
import java.util.List;

/**
 * Which linears of a decoder layer read which input, derived from the family ({@link Layout}): the
 * unit GPTQ's true-sequential stages, AWQ's scale groups and the collector's shared statistics are
 * built from. Names are relative to the layer prefix. Everything here is per layer, since a Qwen
 * mixture of experts mixes dense layers (the ordinary MLP groups) with sparse ones ({@link
 * ModelConfig#sparseLayer}).
 *
 * <ul>
 *   <li>{@link Input#ATTENTION}: the attention input ({@code input_layernorm} output) read by q, k,
 *       v or Phi-3's fused {@code qkv_proj};
 *   <li>{@link Input#ATTENTION_OUT}: the attention context read by {@code o_proj};
 *   <li>{@link Input#MLP}: the MLP input ({@code post_attention_layernorm} output) read by gate and
 *       up or Phi-3's fused {@code gate_up_proj};
 *   <li>{@link Input#MLP_OUT}: {@code silu(gate) * up} read by {@code down_proj};
 *   <li>a sparse layer: {@link Input#ROUTER} (the MLP input, every token) read by the router and,
 *       in Qwen2-MoE, by {@code shared_expert_gate}; {@link Input#EXPERT} (the rows of the MLP
 *       input routed to expert {@code e}) read by its gate and up, {@link Input#EXPERT_OUT} read by
 *       its down; Qwen2-MoE's shared expert: {@link Input#SHARED_EXPERT} (the MLP input, every
 *       token) read by its gate and up, {@link Input#SHARED_EXPERT_OUT} (its own {@code silu(gate)
 *       * up}) read by its down.
 * </ul>
 *
 * <p>The router and the shared expert's {@code [1, hidden]} gate are never quantized or pruned
 * (llm-compressor and AutoAWQ keep both in full precision too): they are tiny, a changed routing
 * decision changes a token's whole MLP, and the gate's sigmoid scales the shared expert's whole
 * output.
 */
public final class LinearGroups {

  /** The input a group of linears reads. */
  public enum Input {
    ATTENTION,
    ATTENTION_OUT,
    MLP,
    MLP_OUT,
    ROUTER,
    EXPERT,
    EXPERT_OUT,
    SHARED_EXPERT,
    SHARED_EXPERT_OUT
  }

  /** Linears reading one input; {@code expert} is -1 outside the experts. */
  public record Group(Input input, int expert, List<String> linears) {
    public Group {
      linears = List.copyOf(linears);
    }
  }

  /**
   * Experts that saw fewer routed calibration tokens than this are not calibrated (GPTQ falls back
   * to round-to-nearest, AWQ to no scale, Wanda to magnitude): one token per 16 input features, at
   * least one. Below it the Gram matrix of an expert's input has rank under {@code hidden/16}, so
   * its statistics describe the dampening more than the data; with zero tokens GPTQ would see an
   * all-dead Hessian and zero the whole expert.
   */
  public static long minExpertTokens(ModelConfig c) {
    return Math.max(1, c.hiddenSize() / 16);
  }

  private LinearGroups() {}

  /**
   * The groups of decoder layer {@code layer} of {@code c}, in the order the forward reads them.
   */
  public static List<Group> of(ModelConfig c, int layer) {
    requireDecoder(c);
    if (layer < 0 || layer >= c.numLayers()) {
      throw new IndexOutOfBoundsException(
          "layer " + layer + " of a " + c.numLayers() + "-layer " + c.modelType());
    }
    List<Group> g = new ArrayList<>();
    g.add(
        new Group(
            Input.ATTENTION,
            -1,
            c.fusedProjections()
                ? List.of("self_attn.qkv_proj")
                : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")));
    g.add(new Group(Input.ATTENTION_OUT, -1, List.of("self_attn.o_proj")));
    if (c.sparseLayer(layer)) {
      boolean shared = Layout.hasSharedExpert(c);
      g.add(
          new Group(
              Input.ROUTER,
              -1,
              shared
                  ? List.of(Layout.router(c), Layout.sharedExpertGate(c))
                  : List.of(Layout.router(c))));
      for (int e = 0; e < c.numExperts(); e++) {
        g.add(
            new Group(
                Input.EXPERT,
                e,
                List.of(
                    Layout.expert(c, e, Layout.ExpertProj.GATE),
                    Layout.expert(c, e, Layout.ExpertProj.UP))));
        g.add(new Group(Input.EXPERT_OUT, e, List.of(Layout.expert(c, e, Layout.ExpertProj.DOWN))));
      }
      if (shared) {
        g.add(
            new Group(
                Input.SHARED_EXPERT,
                -1,
                List.of(
                    Layout.sharedExpert(c, Layout.ExpertProj.GATE),
                    Layout.sharedExpert(c, Layout.ExpertProj.UP))));
        g.add(
            new Group(
                Input.SHARED_EXPERT_OUT,
                -1,
                List.of(Layout.sharedExpert(c, Layout.ExpertProj.DOWN))));
      }
      return g;
    }
    g.add(
        new Group(
            Input.MLP,
            -1,
            c.fusedProjections()
                ? List.of("mlp.gate_up_proj")
                : List.of("mlp.gate_proj", "mlp.up_proj")));
    g.add(new Group(Input.MLP_OUT, -1, List.of("mlp.down_proj")));
    return g;
  }

  /**
   * The group {@code linear} belongs to in layer {@code layer}, or null for a name that is no
   * linear of that layer.
   */
  public static Group groupOf(ModelConfig c, int layer, String linear) {
    for (Group g : of(c, layer)) {
      if (g.linears().contains(linear)) {
        return g;
      }
    }
    return null;
  }

  /**
   * Every linear of layer {@code layer} that is quantized or pruned: all but the router and the
   * shared expert's gate.
   */
  public static List<String> compressible(ModelConfig c, int layer) {
    List<String> out = new ArrayList<>();
    for (Group g : of(c, layer)) {
      if (g.input() != Input.ROUTER) {
        out.addAll(g.linears());
      }
    }
    return out;
  }

  /**
   * GPTQ's true-sequential order for layer {@code layer}: attention input, o_proj, MLP input (all
   * experts' gate and up and the shared expert's together), MLP output (all experts' down and the
   * shared expert's); each stage sees the earlier ones quantized.
   */
  public static List<List<String>> trueSequential(ModelConfig c, int layer) {
    List<List<String>> stages = new ArrayList<>();
    List<String> mlpIn = new ArrayList<>();
    List<String> mlpOut = new ArrayList<>();
    for (Group g : of(c, layer)) {
      switch (g.input()) {
        case ATTENTION, ATTENTION_OUT -> stages.add(g.linears());
        case MLP, EXPERT, SHARED_EXPERT -> mlpIn.addAll(g.linears());
        case MLP_OUT, EXPERT_OUT, SHARED_EXPERT_OUT -> mlpOut.addAll(g.linears());
        case ROUTER -> {}
      }
    }
    stages.add(mlpIn);
    stages.add(mlpOut);
    return List.copyOf(stages);
  }

  /**
   * Every compressible linear's statistics of layer {@code layer} from the unmodified layer, in one
   * stage (AWQ).
   */
  public static List<List<String>> oneStage(ModelConfig c, int layer) {
    return List.of(compressible(c, layer));
  }

  /** {@code [rows, cols]} of the weight of {@code linear} in layer {@code layer}. */
  public static int[] shape(ModelConfig c, int layer, String linear) {
    for (Layout.Spec s : Layout.layer(c, layer)) {
      if (s.name().equals(linear + ".weight")) {
        return new int[] {Math.toIntExact(s.shape()[0]), Math.toIntExact(s.shape()[1])};
      }
    }
    throw new IllegalArgumentException(
        "unknown linear '"
            + linear
            + "' in layer "
            + layer
            + "; expected one of "
            + Layout.linears(c, layer));
  }

  private static void requireDecoder(ModelConfig c) {
    if (c.family() == ModelConfig.Family.GPT2) {
      throw new UnsupportedOperationException(
          "not supported yet: layer-wise calibration of " + c.modelType() + " (Conv1D layers)");
    }
  }
}
