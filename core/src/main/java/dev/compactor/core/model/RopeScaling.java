package dev.compactor.core.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;

/**
 * The rotary position embedding of a Llama-family config: theta, the {@code rope_scaling} (or
 * transformers v5 {@code rope_parameters}) block, and the cos/sin tables every forward uses.
 *
 * <p>The inverse frequencies follow Hugging Face's {@code modeling_rope_utils.py} formula by
 * formula, in float32 steps like torch: {@code default}, {@code linear} (inv_freq / factor), {@code
 * dynamic} (NTK: theta grows with the sequence length once it passes max_position_embeddings),
 * {@code yarn} (per-frequency blend of interpolation and extrapolation between the beta_fast and
 * beta_slow correction dims, cos/sin scaled by the attention factor {@code 0.1 ln(factor) + 1}, or
 * the mscale/mscale_all_dim ratio, or an explicit attention_factor) and {@code llama3} (low
 * frequencies divided by factor, high ones kept, a smooth blend between). Where transformers
 * versions disagree the newest is followed: yarn uses the explicit {@code factor} even when {@code
 * max_position_embeddings / original_max_position_embeddings} differs, and dynamic NTK measures
 * against {@code max_position_embeddings} ({@code original_max_position_embeddings} is accepted
 * and, as in transformers, unused).
 *
 * <p>Dynamic NTK depends on the sequence length: a pass over positions {@code [pos0, pos0+seq)}
 * uses {@code seq_len = pos0 + seq}, which is what transformers does for a full forward and, during
 * cached generation, for each new token (keys already cached keep the rotation they were made with,
 * as in transformers). So past max_position_embeddings cached decoding differs from one full pass
 * for dynamic, exactly as it does in transformers; below it (and for every other type) the two are
 * equal.
 *
 * <p>{@code partial_rotary_factor} rotates only the leading dims of each head where the family's
 * attention does (Phi-3: {@link #from(JsonNode, int, boolean)}). Anything else ({@code longrope},
 * an unknown key, {@code partial_rotary_factor} other than 1 for a family whose modeling file
 * rotates the whole head, e.g. modeling_llama) is refused: "not supported:
 * rope_scaling.field=value".
 */
public final class RopeScaling {

  /** The rope types built. */
  public enum Type {
    DEFAULT,
    LINEAR,
    DYNAMIC,
    YARN,
    LLAMA3
  }

  private static final Set<String> COMMON = Set.of("rope_type", "type", "rope_theta");
  private static final Map<Type, Set<String>> KEYS =
      Map.of(
          Type.DEFAULT, Set.of(),
          Type.LINEAR, Set.of("factor"),
          Type.DYNAMIC, Set.of("factor", "original_max_position_embeddings"),
          Type.YARN,
              Set.of(
                  "factor",
                  "attention_factor",
                  "beta_fast",
                  "beta_slow",
                  "original_max_position_embeddings",
                  "mscale",
                  "mscale_all_dim",
                  "truncate"),
          Type.LLAMA3,
              Set.of(
                  "factor",
                  "original_max_position_embeddings",
                  "low_freq_factor",
                  "high_freq_factor"));

  private final Type type;
  private final double theta;
  private final int dim;
  private final int maxPositions;
  private final double factor;
  private final int originalMaxPositions;
  private final double lowFreqFactor;
  private final double highFreqFactor;
  private final double betaFast;
  private final double betaSlow;
  private final boolean truncate;
  private final float attentionFactor;
  private final float[] fixedInvFreq;

  private RopeScaling(
      Type type,
      double theta,
      int dim,
      int maxPositions,
      double factor,
      int originalMaxPositions,
      double lowFreqFactor,
      double highFreqFactor,
      double betaFast,
      double betaSlow,
      boolean truncate,
      float attentionFactor) {
    this.type = type;
    this.theta = theta;
    this.dim = dim;
    this.maxPositions = maxPositions;
    this.factor = factor;
    this.originalMaxPositions = originalMaxPositions;
    this.lowFreqFactor = lowFreqFactor;
    this.highFreqFactor = highFreqFactor;
    this.betaFast = betaFast;
    this.betaSlow = betaSlow;
    this.truncate = truncate;
    this.attentionFactor = attentionFactor;
    this.fixedInvFreq = type == Type.DYNAMIC ? null : compute(maxPositions);
  }

  /** Plain RoPE (no scaling) with {@code theta} over a head of {@code headDim}. */
  public static RopeScaling none(double theta, int headDim, int maxPositions) {
    return new RopeScaling(
        Type.DEFAULT, theta, headDim, maxPositions, 1, maxPositions, 0, 0, 0, 0, true, 1f);
  }

  /**
   * Reads rope_theta, rope_scaling (or rope_parameters), max_position_embeddings and
   * partial_rotary_factor from a config.json.
   *
   * @throws UnsupportedModelException for a rope type, key or partial rotary factor not built
   * @throws IllegalArgumentException for a missing or malformed value
   */
  public static RopeScaling from(JsonNode config, int headDim) {
    return from(config, headDim, false);
  }

  /**
   * As {@link #from(JsonNode, int)}; with {@code partialRotary} (Phi-3's attention) a {@code
   * partial_rotary_factor} f in (0, 1] rotates the first {@code int(headDim * f)} dims of each head
   * (every rope type's frequencies computed over those dims, as modeling_rope_utils does) and
   * passes the rest through; {@link #rotaryDim()} says how many.
   */
  public static RopeScaling from(JsonNode config, int headDim, boolean partialRotary) {
    int maxPositions = config.path("max_position_embeddings").asInt(2048);
    JsonNode partial = config.get("partial_rotary_factor");
    if (partial != null && !partial.isNull() && partial.asDouble() != 1.0) {
      if (!partialRotary) {
        throw new UnsupportedModelException(
            "not supported: partial_rotary_factor="
                + partial
                + " (modeling_llama rotates the whole head)");
      }
      double f = partial.asDouble();
      if (!partial.isNumber() || !(f > 0 && f <= 1)) {
        throw new IllegalArgumentException(
            "config.json: expected partial_rotary_factor in (0, 1], found " + partial);
      }
      int rotary = (int) (headDim * f); // Python's int(): toward zero
      if (rotary < 2 || rotary % 2 != 0) {
        throw new IllegalArgumentException(
            "config.json: partial_rotary_factor "
                + partial
                + " rotates "
                + rotary
                + " of "
                + headDim
                + " head dims; expected an even number >= 2");
      }
      headDim = rotary;
    }
    JsonNode s = config.get("rope_scaling");
    if (s == null || s.isNull()) {
      s = config.get("rope_parameters");
    }
    double theta = number(config, "rope_theta", "rope_theta", 10000.0);
    if (s == null || s.isNull()) {
      return none(theta, headDim, maxPositions);
    }
    if (!s.isObject()) {
      throw new IllegalArgumentException(
          "config.json: expected an object for rope_scaling, found " + s);
    }
    theta = number(s, "rope_theta", "rope_scaling.rope_theta", theta);
    String name = s.path("rope_type").asText(s.path("type").asText("default"));
    Type type =
        switch (name) {
          case "default" -> Type.DEFAULT;
          case "linear" -> Type.LINEAR;
          case "dynamic" -> Type.DYNAMIC;
          case "yarn" -> Type.YARN;
          case "llama3" -> Type.LLAMA3;
          default ->
              throw new UnsupportedModelException(
                  "not supported: rope_scaling."
                      + (s.has("rope_type") ? "rope_type" : "type")
                      + "="
                      + name);
        };
    for (Iterator<Map.Entry<String, JsonNode>> it = s.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!COMMON.contains(e.getKey()) && !KEYS.get(type).contains(e.getKey())) {
        throw new UnsupportedModelException(
            "not supported: rope_scaling." + e.getKey() + "=" + e.getValue());
      }
    }
    if (type == Type.DEFAULT) {
      return none(theta, headDim, maxPositions);
    }
    double factor = required(s, "factor", name);
    if (!(factor >= 1.0)) {
      throw new IllegalArgumentException(
          "config.json: rope_scaling.factor must be >= 1, found " + factor);
    }
    int original =
        type == Type.LLAMA3
            ? (int) required(s, "original_max_position_embeddings", name)
            : (int)
                number(
                    s,
                    "original_max_position_embeddings",
                    "rope_scaling.original_max_position_embeddings",
                    maxPositions);
    if (original <= 0) {
      throw new IllegalArgumentException(
          "config.json: rope_scaling.original_max_position_embeddings must be positive, found "
              + original);
    }
    double low = 0;
    double high = 0;
    if (type == Type.LLAMA3) {
      low = required(s, "low_freq_factor", name);
      high = required(s, "high_freq_factor", name);
      if (!(high > low)) {
        throw new IllegalArgumentException(
            "config.json: rope_scaling.high_freq_factor "
                + high
                + " must exceed low_freq_factor "
                + low);
      }
    }
    float attention = 1f;
    double betaFast = 32;
    double betaSlow = 1;
    boolean truncate = true;
    if (type == Type.YARN) {
      // transformers reads these with `get(...) or default`: 0 and null both mean the default
      betaFast = orDefault(number(s, "beta_fast", "rope_scaling.beta_fast", 0), 32);
      betaSlow = orDefault(number(s, "beta_slow", "rope_scaling.beta_slow", 0), 1);
      JsonNode t = s.get("truncate");
      if (t != null && !t.isNull()) {
        if (!t.isBoolean()) {
          throw new IllegalArgumentException(
              "config.json: expected true/false for rope_scaling.truncate, found " + t);
        }
        truncate = t.booleanValue();
      }
      JsonNode af = s.get("attention_factor");
      double mscale = number(s, "mscale", "rope_scaling.mscale", 0);
      double mscaleAllDim = number(s, "mscale_all_dim", "rope_scaling.mscale_all_dim", 0);
      if (af != null && !af.isNull()) {
        attention = (float) number(s, "attention_factor", "rope_scaling.attention_factor", 1);
      } else if (mscale != 0 && mscaleAllDim != 0) {
        attention = (float) (yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAllDim));
      } else {
        attention = (float) yarnMscale(factor, 1);
      }
    }
    return new RopeScaling(
        type,
        theta,
        headDim,
        maxPositions,
        factor,
        original,
        low,
        high,
        betaFast,
        betaSlow,
        truncate,
        attention);
  }

  /** transformers' yarn {@code get_mscale}. */
  static double yarnMscale(double scale, double mscale) {
    return scale <= 1 ? 1.0 : 0.1 * mscale * Math.log(scale) + 1.0;
  }

  /** How many leading dims of each head rotate (the head dim unless partial_rotary_factor). */
  public int rotaryDim() {
    return dim;
  }

  public Type type() {
    return type;
  }

  public double theta() {
    return theta;
  }

  public double factor() {
    return factor;
  }

  /** The pretraining context the scaling stretches (yarn, llama3; else max_position_embeddings). */
  public int originalMaxPositions() {
    return originalMaxPositions;
  }

  public double lowFreqFactor() {
    return lowFreqFactor;
  }

  public double highFreqFactor() {
    return highFreqFactor;
  }

  public double betaFast() {
    return betaFast;
  }

  public double betaSlow() {
    return betaSlow;
  }

  /** Whether yarn rounds its correction range to whole dims (transformers' default, and ggml's). */
  public boolean truncate() {
    return truncate;
  }

  /** The factor cos and sin are multiplied by (yarn's mscale; 1 for every other type). */
  public float attentionFactor() {
    return attentionFactor;
  }

  /**
   * Whether yarn's attention factor is the plain {@code 0.1 ln(factor) + 1} (what ggml assumes).
   */
  public boolean defaultYarnAttention() {
    return attentionFactor == (float) yarnMscale(factor, 1);
  }

  /**
   * The most positions a forward may cover: max_position_embeddings, or for dynamic NTK and yarn
   * factor × the original context when that is more (configs of both often keep the pretraining
   * length in max_position_embeddings; llama3 and linear configs carry the stretched one there).
   */
  public int positionLimit() {
    if (type != Type.DYNAMIC && type != Type.YARN) {
      return maxPositions;
    }
    double stretched = factor * originalMaxPositions;
    return (int) Math.min(Integer.MAX_VALUE, Math.max(maxPositions, stretched));
  }

  /** The unscaled inverse frequencies {@code 1 / theta^(2j/d)}, float32 as torch makes them. */
  public float[] baseInvFreq() {
    return defaultInvFreq(theta);
  }

  /** The inverse frequencies a pass ending at position {@code seqLen} (exclusive) uses. */
  public float[] invFreq(int seqLen) {
    return fixedInvFreq != null ? fixedInvFreq.clone() : compute(seqLen);
  }

  private float[] defaultInvFreq(double base) {
    float[] inv = new float[dim / 2];
    for (int j = 0; j < dim / 2; j++) {
      float exponent = (float) (2 * j) / (float) dim;
      inv[j] = 1f / (float) Math.pow(base, exponent);
    }
    return inv;
  }

  private float[] compute(int seqLen) {
    switch (type) {
      case DEFAULT:
        return defaultInvFreq(theta);
      case LINEAR:
        {
          float[] inv = defaultInvFreq(theta);
          for (int j = 0; j < inv.length; j++) {
            inv[j] = (float) (inv[j] / factor);
          }
          return inv;
        }
      case DYNAMIC:
        {
          double len = Math.max(seqLen, maxPositions);
          double base =
              theta
                  * Math.pow(
                      (factor * len / maxPositions) - (factor - 1), (double) dim / (dim - 2));
          return defaultInvFreq(base);
        }
      case YARN:
        return yarn();
      case LLAMA3:
        return llama3();
      default:
        throw new IllegalStateException(type.toString());
    }
  }

  private float[] yarn() {
    int half = dim / 2;
    double low = correctionDim(betaFast);
    double high = correctionDim(betaSlow);
    if (truncate) {
      low = Math.floor(low);
      high = Math.ceil(high);
    }
    low = Math.max(low, 0);
    high = Math.min(high, dim - 1);
    if (low == high) {
      high += 0.001; // transformers: prevent singularity
    }
    float lo = (float) low;
    float span = (float) (high - low);
    float[] inv = new float[half];
    for (int j = 0; j < half; j++) {
      float posFreq = (float) Math.pow(theta, (float) (2 * j) / (float) dim);
      float extrapolation = 1f / posFreq;
      float interpolation = 1f / ((float) factor * posFreq);
      float ramp = Math.min(1f, Math.max(0f, ((float) j - lo) / span));
      float extrapolationFactor = 1f - ramp;
      inv[j] = interpolation * (1f - extrapolationFactor) + extrapolation * extrapolationFactor;
    }
    return inv;
  }

  /** transformers' find_correction_dim: the dim that turns numRotations times in the context. */
  private double correctionDim(double numRotations) {
    return (dim * Math.log(originalMaxPositions / (numRotations * 2 * Math.PI)))
        / (2 * Math.log(theta));
  }

  private float[] llama3() {
    float[] inv = defaultInvFreq(theta);
    float lowWavelen = (float) (originalMaxPositions / lowFreqFactor);
    float highWavelen = (float) (originalMaxPositions / highFreqFactor);
    float f = (float) factor;
    for (int j = 0; j < inv.length; j++) {
      float wavelen = (float) (2 * Math.PI) / inv[j];
      float scaled = wavelen > lowWavelen ? inv[j] / f : inv[j];
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        float smooth =
            (float)
                ((originalMaxPositions / wavelen - lowFreqFactor)
                    / (highFreqFactor - lowFreqFactor));
        scaled = (1 - smooth) * scaled / f + smooth * scaled;
      }
      inv[j] = scaled;
    }
    return inv;
  }

  /**
   * llama.cpp's {@code rope_freqs} for a llama3 model: per frequency the divisor ggml applies to
   * the unscaled frequency (1 for high frequencies, factor for low ones, the smooth blend's inverse
   * between), as convert_hf_to_gguf.py computes it.
   */
  public float[] llama3FreqFactors() {
    if (type != Type.LLAMA3) {
      throw new IllegalStateException("rope_freqs only exist for llama3 scaling, not " + type);
    }
    float[] freqs = defaultInvFreq(theta);
    float[] out = new float[freqs.length];
    double lowWavelen = originalMaxPositions / lowFreqFactor;
    double highWavelen = originalMaxPositions / highFreqFactor;
    for (int j = 0; j < freqs.length; j++) {
      double wavelen = 2 * Math.PI / freqs[j];
      if (wavelen < highWavelen) {
        out[j] = 1f;
      } else if (wavelen > lowWavelen) {
        out[j] = (float) factor;
      } else {
        double smooth =
            (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        out[j] = (float) (1 / ((1 - smooth) / factor + smooth));
      }
    }
    return out;
  }

  /**
   * cos/sin {@code [seq, d]} for positions {@code pos0..pos0+seq-1} (each frequency twice, HF's
   * rotate_half layout), scaled by the attention factor, in {@code m}.
   */
  public NDArray[] tables(NDManager m, int pos0, int seq) {
    float[] inv = invFreq(pos0 + seq);
    int d = dim;
    float[] cos = new float[seq * d];
    float[] sin = new float[seq * d];
    for (int t = 0; t < seq; t++) {
      for (int j = 0; j < d / 2; j++) {
        float angle = (float) (pos0 + t) * inv[j];
        float cv = (float) Math.cos(angle) * attentionFactor;
        float sv = (float) Math.sin(angle) * attentionFactor;
        cos[t * d + j] = cv;
        cos[t * d + j + d / 2] = cv;
        sin[t * d + j] = sv;
        sin[t * d + j + d / 2] = sv;
      }
    }
    return new NDArray[] {m.create(cos, new Shape(seq, d)), m.create(sin, new Shape(seq, d))};
  }

  private static double required(JsonNode s, String key, String type) {
    JsonNode v = s.get(key);
    if (v == null || v.isNull()) {
      throw new IllegalArgumentException(
          "config.json: rope_scaling." + key + " is required for rope_type " + type);
    }
    return number(s, key, "rope_scaling." + key, 0);
  }

  private static double number(JsonNode n, String key, String where, double dflt) {
    JsonNode v = n.get(key);
    if (v == null || v.isNull()) {
      return dflt;
    }
    if (!v.isNumber()) {
      throw new IllegalArgumentException(
          "config.json: expected a number for " + where + ", found " + v);
    }
    return v.doubleValue();
  }

  private static double orDefault(double v, double dflt) {
    return v == 0 ? dflt : v;
  }

  @Override
  public String toString() {
    return type == Type.DEFAULT
        ? "rope(theta=" + theta + ")"
        : "rope(" + type.name().toLowerCase() + ", theta=" + theta + ", factor=" + factor + ")";
  }
}
