package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * Unstructured pruning: zero the given fraction of each linear layer's weights.
 *
 * @param method how weights are scored: by magnitude, or by Wanda's |w|·‖x‖ (needs calibration)
 * @param sparsity fraction of weights zeroed, strictly between 0 and 1
 */
public record PruneParams(Method method, double sparsity) implements StageParams {

  /** Weight-scoring rule. */
  public enum Method {
    MAGNITUDE,
    WANDA;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public PruneParams {
    if (!(sparsity > 0 && sparsity < 1)) {
      throw new IllegalArgumentException("sparsity must be in (0, 1), found " + sparsity);
    }
  }

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("prune")
          .optional("method", ParamSchema.oneOf("magnitude", "wanda"))
          .required("sparsity", ParamSchema.number(0, false, 1, false));

  static PruneParams from(JsonNode p) {
    return new PruneParams(
        Method.valueOf(Json.text(p, "method", "magnitude").toUpperCase(Locale.ROOT)),
        Json.number(p, "sparsity", Double.NaN));
  }

  /** Whether this stage reads calibration activations. */
  public boolean needsCalibration() {
    return method == Method.WANDA;
  }

  @Override
  public StageKind kind() {
    return StageKind.PRUNE;
  }

  @Override
  public ObjectNode toJson() {
    return Json.object().put("method", method.key()).put("sparsity", sparsity);
  }
}
