package dev.compactor.core.factorize;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * What a factorization did, counted from shapes: every decoder linear considered, its rank (0: kept
 * dense), its parameters before and after, and the model's totals. "Linear multiply-adds per token"
 * sums {@code out * in} (dense) or {@code r (out + in)} (factorized) over the decoder linears, the
 * part of a token's forward factorization changes (attention scores and the LM head are not
 * counted).
 *
 * @param method {@code svd} or {@code svd_llm}
 * @param rule the rank rule
 * @param merged whether the output stores the products back as dense {@code X.weight}
 * @param matrices every decoder linear considered, in layer order
 * @param parametersBefore every tensor of the input model
 * @param parametersAfter the output model's tensors: factorized linears count {@code r (out + in)};
 *     a merged output stores every linear dense, so it equals {@code parametersBefore}
 * @param linearMacsBefore decoder linear multiply-adds per token, dense
 * @param linearMacsAfter decoder linear multiply-adds per token of the output model (merged: the
 *     dense count again)
 * @param calibrationTokens tokens the Gram matrices were collected on (0 for plain SVD)
 */
public record FactorizationReport(
    String method,
    RankRule rule,
    boolean merged,
    List<Matrix> matrices,
    long parametersBefore,
    long parametersAfter,
    long linearMacsBefore,
    long linearMacsAfter,
    long calibrationTokens) {

  /**
   * One linear.
   *
   * @param name full name, e.g. {@code model.layers.0.self_attn.q_proj}
   * @param rank kept rank, 0 when left dense
   * @param energy share of the spectrum's {@code sum s^2} kept (1 when dense)
   * @param damping SVD-LLM's ridge on the Gram matrix, fraction of its mean diagonal (0: none)
   */
  public record Matrix(String name, int out, int in, int rank, double energy, double damping) {
    public long parametersBefore() {
      return (long) out * in;
    }

    public long parametersAfter() {
      return rank == 0 ? parametersBefore() : (long) rank * (out + in);
    }
  }

  /** Linears stored factorized. */
  public long factorizedCount() {
    return matrices.stream().filter(m -> m.rank() > 0).count();
  }

  public ObjectNode toJson() {
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put("method", method);
    o.put("rank_rule", rule.kind().key());
    o.put("rank_value", rule.value());
    o.put("merged", merged);
    o.put("parameters_before", parametersBefore);
    o.put("parameters_after", parametersAfter);
    o.put("linear_macs_per_token_before", linearMacsBefore);
    o.put("linear_macs_per_token_after", linearMacsAfter);
    o.put("factorized_linears", factorizedCount());
    o.put("calibration_tokens", calibrationTokens);
    ArrayNode a = o.putArray("matrices");
    for (Matrix m : matrices) {
      a.addObject()
          .put("name", m.name())
          .put("out", m.out())
          .put("in", m.in())
          .put("rank", m.rank())
          .put("parameters_before", m.parametersBefore())
          .put("parameters_after", m.parametersAfter())
          .put("energy", m.energy())
          .put("damping", m.damping());
    }
    return o;
  }
}
