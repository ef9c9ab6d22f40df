package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.prune.NmPattern;
import java.util.List;
import java.util.Locale;

/**
 * Pruning: zero the given fraction of each linear layer's weights (unstructured), or keep N of
 * every M consecutive inputs (semi-structured {@code pattern: "2:4"}).
 *
 * @param method how weights are scored: by magnitude, by Wanda's |w|·‖x‖, or by SparseGPT's OBS
 *     saliency with weight updates (both need calibration)
 * @param sparsity fraction of weights zeroed, strictly between 0 and 1; {@code 1 - N/M} with a
 *     pattern
 * @param pattern the N:M pattern, or null for unstructured pruning
 */
public record PruneParams(Method method, double sparsity, NmPattern pattern)
    implements StageParams {

  /** Weight-scoring rule. */
  public enum Method {
    MAGNITUDE,
    WANDA,
    SPARSEGPT;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public PruneParams {
    if (!(sparsity > 0 && sparsity < 1)) {
      throw new IllegalArgumentException("sparsity must be in (0, 1), found " + sparsity);
    }
    if (pattern != null && Math.abs(sparsity - pattern.sparsity()) > 1e-12) {
      throw new IllegalArgumentException(
          "pattern "
              + pattern
              + " fixes the sparsity at "
              + pattern.sparsity()
              + ", found "
              + sparsity);
    }
  }

  /** Unstructured pruning. */
  public PruneParams(Method method, double sparsity) {
    this(method, sparsity, null);
  }

  static final ParamSchema.Type PATTERN =
      new ParamSchema.Type() {
        @Override
        public void check(JsonNode node, String path, List<RecipeProblem> out) {
          try {
            if (!node.isTextual()) {
              throw new IllegalArgumentException();
            }
            NmPattern.parse(node.asText());
          } catch (IllegalArgumentException e) {
            out.add(ParamSchema.mismatch(path, describe(), node));
          }
        }

        @Override
        public String describe() {
          return "an N:M pattern with 1 <= N < M, e.g. \"2:4\" or \"4:8\"";
        }
      };

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("prune")
          .optional("method", ParamSchema.oneOf("magnitude", "wanda", "sparsegpt"))
          .optional("sparsity", ParamSchema.number(0, false, 1, false))
          .optional("pattern", PATTERN);

  /** Exactly one of sparsity and pattern; {@code p} already passed {@link #SCHEMA}. */
  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    boolean hasSparsity = p.has("sparsity");
    boolean hasPattern = p.has("pattern");
    if (hasSparsity == hasPattern) {
      out.add(
          new RecipeProblem(
              hasSparsity ? path : (path.isEmpty() ? "sparsity" : path + ".sparsity"),
              hasSparsity
                  ? "give either sparsity or pattern, not both (an N:M pattern fixes the"
                      + " sparsity)"
                  : "missing; prune needs sparsity (a fraction) or pattern (N:M, e.g. \"2:4\")"));
    }
  }

  static PruneParams from(JsonNode p) {
    Method method = Method.valueOf(Json.text(p, "method", "magnitude").toUpperCase(Locale.ROOT));
    String pattern = Json.text(p, "pattern", null);
    if (pattern != null) {
      NmPattern nm = NmPattern.parse(pattern);
      return new PruneParams(method, nm.sparsity(), nm);
    }
    return new PruneParams(method, Json.number(p, "sparsity", Double.NaN));
  }

  /** Whether this stage reads calibration activations. */
  public boolean needsCalibration() {
    return method != Method.MAGNITUDE;
  }

  @Override
  public StageKind kind() {
    return StageKind.PRUNE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object().put("method", method.key());
    return pattern == null ? o.put("sparsity", sparsity) : o.put("pattern", pattern.toString());
  }
}
