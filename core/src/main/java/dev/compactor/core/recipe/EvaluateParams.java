package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * What to measure on the candidate model, always relative to the job's baseline (ingested) model.
 *
 * @param perplexity sliding-window perplexity settings, or null when perplexity is off
 * @param kl KL divergence and top-1 agreement of the candidate's next-token distribution vs the
 *     baseline's
 * @param latency per-token forward latency and the size ratio
 */
public record EvaluateParams(Perplexity perplexity, boolean kl, boolean latency)
    implements StageParams {

  /** Default window when perplexity is on but no seq_len is given. */
  public static final int DEFAULT_SEQ_LEN = 512;

  /**
   * Sliding-window perplexity settings.
   *
   * @param seqLen tokens per window
   * @param stride tokens the window advances; equal to seqLen for disjoint windows
   */
  public record Perplexity(int seqLen, int stride) {}

  static final ParamSchema.ObjectType PERPLEXITY_SCHEMA =
      ParamSchema.object("perplexity")
          .optional("seq_len", ParamSchema.integerAtLeast(1))
          .optional("stride", ParamSchema.integerAtLeast(1));

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("evaluate")
          .optional("perplexity", ParamSchema.either(ParamSchema.bool(), PERPLEXITY_SCHEMA))
          .optional("kl", ParamSchema.bool())
          .optional("latency", ParamSchema.bool());

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    JsonNode ppl = p == null ? null : p.get("perplexity");
    if (ppl != null && ppl.isObject() && ppl.has("seq_len") && ppl.has("stride")) {
      if (ppl.get("stride").asInt() > ppl.get("seq_len").asInt()) {
        out.add(
            new RecipeProblem(
                path + ".perplexity.stride",
                "stride "
                    + ppl.get("stride").asInt()
                    + " is larger than seq_len "
                    + ppl.get("seq_len").asInt()
                    + ", so tokens between windows would never be scored"));
      }
    }
    EvaluateParams e = from(p);
    if (e.perplexity == null && !e.kl && !e.latency) {
      out.add(new RecipeProblem(path, "measures nothing: perplexity, kl and latency are all off"));
    }
  }

  static EvaluateParams from(JsonNode p) {
    JsonNode ppl = p == null ? null : p.get("perplexity");
    Perplexity perplexity;
    if (ppl == null || ppl.isNull() || (ppl.isBoolean() && ppl.asBoolean())) {
      perplexity = new Perplexity(DEFAULT_SEQ_LEN, DEFAULT_SEQ_LEN);
    } else if (ppl.isBoolean()) {
      perplexity = null;
    } else {
      int seqLen = Json.integer(ppl, "seq_len", DEFAULT_SEQ_LEN);
      perplexity = new Perplexity(seqLen, Json.integer(ppl, "stride", seqLen));
    }
    return new EvaluateParams(perplexity, Json.bool(p, "kl", true), Json.bool(p, "latency", false));
  }

  @Override
  public StageKind kind() {
    return StageKind.EVALUATE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object();
    if (perplexity == null) {
      o.put("perplexity", false);
    } else {
      o.putObject("perplexity")
          .put("seq_len", perplexity.seqLen())
          .put("stride", perplexity.stride());
    }
    return o.put("kl", kl).put("latency", latency);
  }
}
