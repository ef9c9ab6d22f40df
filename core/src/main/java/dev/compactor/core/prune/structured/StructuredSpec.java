package dev.compactor.core.prune.structured;

import java.util.Locale;

/**
 * What structured pruning removes: a fraction of every layer's attention heads (or KV groups) and
 * of its MLP channels, the same count in every layer (uniform widths) or, for channels, a count per
 * layer from the scores of all layers ({@link Widths#PER_LAYER}); which ones, chosen per layer by
 * that layer's calibration scores.
 *
 * @param heads fraction of heads to remove, in [0, 1): of the KV groups ({@link
 *     HeadMode#KV_GROUPS}) or of the query heads of every KV group ({@link HeadMode#QUERY_HEADS})
 * @param channels fraction of the MLP's intermediate channels to remove, in [0, 1)
 * @param importance how heads and channels are scored
 * @param headMode how grouped-query attention stays consistent
 * @param compensate FLAP's bias compensation: the removed channels' mean contribution becomes a
 *     bias of o_proj / down_proj
 * @param widths {@link Widths#UNIFORM} removes the same number of MLP channels from every layer;
 *     {@link Widths#PER_LAYER} removes the same total but lets each layer's count follow its scores
 *     (heads stay uniform either way)
 */
public record StructuredSpec(
    double heads,
    double channels,
    Importance importance,
    HeadMode headMode,
    boolean compensate,
    Widths widths) {

  /** How the removed MLP channels are spread over the layers. */
  public enum Widths {
    /** The same count in every layer: the result keeps one intermediate_size (HF loads it). */
    UNIFORM,
    /**
     * FLAP's adaptive structure: every layer's channel scores standardised (z-scores), the lowest
     * of all layers removed together, at least one channel kept per layer; the result has one width
     * per layer, which only Compactor loads.
     */
    PER_LAYER;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Widths parse(String s) {
      for (Widths w : values()) {
        if (w.key().equals(s)) {
          return w;
        }
      }
      throw new IllegalArgumentException("expected uniform or per_layer, found '" + s + "'");
    }
  }

  /** Uniform widths. */
  public StructuredSpec(
      double heads, double channels, Importance importance, HeadMode headMode, boolean compensate) {
    this(heads, channels, importance, headMode, compensate, Widths.UNIFORM);
  }

  /** How a head or channel is scored from calibration activations. */
  public enum Importance {
    /**
     * Minitron (Muralidharan et al. 2024): channel = mean |silu(gate)·up| over tokens, head = mean
     * L2 norm of its attention output slice.
     */
    ACTIVATION,
    /**
     * FLAP (An et al. 2024): per input channel of o_proj/down_proj, the variance of its activation
     * over tokens times the squared L2 norm of its weight column; a head sums its columns.
     */
    FLUCTUATION;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Importance parse(String s) {
      for (Importance i : values()) {
        if (i.key().equals(s)) {
          return i;
        }
      }
      throw new IllegalArgumentException("expected activation or fluctuation, found '" + s + "'");
    }
  }

  /** Which heads go together under grouped-query attention. */
  public enum HeadMode {
    /** Remove whole KV heads together with every query head they serve. */
    KV_GROUPS,
    /** Remove the same number of query heads from every KV group; every KV head stays. */
    QUERY_HEADS;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static HeadMode parse(String s) {
      for (HeadMode m : values()) {
        if (m.key().equals(s)) {
          return m;
        }
      }
      throw new IllegalArgumentException("expected kv_groups or query_heads, found '" + s + "'");
    }
  }

  public StructuredSpec {
    if (!(heads >= 0 && heads < 1)) {
      throw new IllegalArgumentException("heads must be a fraction in [0, 1), found " + heads);
    }
    if (!(channels >= 0 && channels < 1)) {
      throw new IllegalArgumentException(
          "channels must be a fraction in [0, 1), found " + channels);
    }
    if (heads == 0 && channels == 0) {
      throw new IllegalArgumentException(
          "structured pruning needs heads > 0 or channels > 0, found both 0");
    }
    if (importance == null || headMode == null || widths == null) {
      throw new IllegalArgumentException("importance, head mode and widths must be given");
    }
    if (widths == Widths.PER_LAYER && channels == 0) {
      throw new IllegalArgumentException(
          "widths per_layer spreads the removed MLP channels over the layers; give channels > 0"
              + " (heads stay uniform)");
    }
  }
}
