package dev.compactor.core.gguf;

import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * llama.cpp's tensors for a decoder layer's sparse mixture-of-experts MLP, one table shared by the
 * exporter ({@link LlamaGgufExporter}) and the reader back to Hugging Face, so both agree on every
 * name. Hugging Face names come from {@link Layout#router} and {@link Layout#expert}, so a family
 * with other checkpoint names needs no change here.
 *
 * <p>As convert_hf_to_gguf.py writes Mixtral (LlamaModel.modify_tensors, gguf-py's constants.py):
 *
 * <pre>
 *   blk.N.ffn_gate_inp.weight   ne [hidden, E]        the router, F32 (never quantized)
 *   blk.N.ffn_gate_exps.weight  ne [hidden, ff, E]    experts' gate (w1) stacked, expert 0 first
 *   blk.N.ffn_up_exps.weight    ne [hidden, ff, E]    experts' up (w3)
 *   blk.N.ffn_down_exps.weight  ne [ff, hidden, E]    experts' down (w2)
 * </pre>
 *
 * i.e. each HF expert's {@code [out, in]} matrix, stacked along a new slowest dimension ({@code
 * torch.stack(dim=0)}), row-major {@code [E, out, in]}; the quantizers see {@code E*out} rows of
 * {@code in} values. Qwen2-MoE and Qwen3-MoE (llama.cpp's qwen2moe/qwen3moe,
 * convert_hf_to_gguf.py's Qwen2MoeModel) have the same router and stacks from {@code mlp.gate} and
 * {@code mlp.experts.E.gate_proj/up_proj/down_proj}; qwen2moe adds its shared expert as plain
 * tensors:
 *
 * <pre>
 *   blk.N.ffn_gate_inp_shexp.weight  ne [hidden, 1]    mlp.shared_expert_gate ([1, hidden])
 *   blk.N.ffn_gate_shexp.weight      ne [hidden, ffs]  mlp.shared_expert.gate_proj
 *   blk.N.ffn_up_shexp.weight        ne [hidden, ffs]  mlp.shared_expert.up_proj
 *   blk.N.ffn_down_shexp.weight      ne [ffs, hidden]  mlp.shared_expert.down_proj
 * </pre>
 *
 * llama.cpp loads the gate as {@code {n_embd}}, which a trailing dimension of 1 satisfies;
 * convert_hf_to_gguf.py keeps HF's 2-D shape and llama-quantize treats it as any matrix (its name
 * is not {@code ffn_gate_inp.weight}).
 */
public final class GgufExperts {

  /**
   * One GGUF tensor of an MoE layer.
   *
   * @param gguf the name after {@code blk.N.}
   * @param stacked one tensor per expert stacked into a 3-D tensor, or a single 2-D tensor
   * @param hf the Hugging Face tensors behind it, relative to the layer prefix, in stacking order
   */
  public record Tensor(String gguf, boolean stacked, List<String> hf) {

    public Tensor {
      hf = List.copyOf(hf);
    }
  }

  /** The GGUF name of the router. */
  public static final String ROUTER = "ffn_gate_inp.weight";

  /** The stacked experts' GGUF names, by projection. */
  private static final Map<Layout.ExpertProj, String> STACKS = stacks();

  private static Map<Layout.ExpertProj, String> stacks() {
    Map<Layout.ExpertProj, String> m = new LinkedHashMap<>();
    m.put(Layout.ExpertProj.GATE, "ffn_gate_exps.weight");
    m.put(Layout.ExpertProj.UP, "ffn_up_exps.weight");
    m.put(Layout.ExpertProj.DOWN, "ffn_down_exps.weight");
    return m;
  }

  /** The GGUF name of the shared expert's sigmoid gate (qwen2moe). */
  public static final String SHARED_GATE = "ffn_gate_inp_shexp.weight";

  /** The shared expert's GGUF names, by projection (qwen2moe). */
  private static final Map<Layout.ExpertProj, String> SHARED = shared();

  private static Map<Layout.ExpertProj, String> shared() {
    Map<Layout.ExpertProj, String> m = new LinkedHashMap<>();
    m.put(Layout.ExpertProj.GATE, "ffn_gate_shexp.weight");
    m.put(Layout.ExpertProj.UP, "ffn_up_shexp.weight");
    m.put(Layout.ExpertProj.DOWN, "ffn_down_shexp.weight");
    return m;
  }

  private GgufExperts() {}

  /**
   * The MoE tensors of one layer of {@code c} (which must have experts, every layer sparse: neither
   * llama.cpp's llama nor its qwen2moe/qwen3moe has dense layers beside sparse ones), in file
   * order.
   */
  public static List<Tensor> layer(ModelConfig c) {
    switch (c.family()) {
      case MIXTRAL, QWEN2_MOE, QWEN3_MOE -> {}
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: GGUF layout of " + c.modelType() + "'s experts");
    }
    for (int i = 0; i < c.numLayers(); i++) {
      if (!c.sparseLayer(i)) {
        throw new UnsupportedOperationException(
            "not supported: GGUF layout of " + c.modelType() + " with dense layer " + i);
      }
    }
    List<Tensor> t = new ArrayList<>();
    t.add(new Tensor(ROUTER, false, List.of(Layout.router(c) + ".weight")));
    for (Map.Entry<Layout.ExpertProj, String> s : STACKS.entrySet()) {
      List<String> experts = new ArrayList<>(c.numExperts());
      for (int e = 0; e < c.numExperts(); e++) {
        experts.add(Layout.expert(c, e, s.getKey()) + ".weight");
      }
      t.add(new Tensor(s.getValue(), true, experts));
    }
    if (Layout.hasSharedExpert(c)) {
      t.add(new Tensor(SHARED_GATE, false, List.of(Layout.sharedExpertGate(c) + ".weight")));
      for (Map.Entry<Layout.ExpertProj, String> s : SHARED.entrySet()) {
        t.add(
            new Tensor(
                s.getValue(), false, List.of(Layout.sharedExpert(c, s.getKey()) + ".weight")));
      }
    }
    return t;
  }
}
