package dev.compactor.core.prune.structured;

import java.util.Locale;

/**
 * What structured pruning removes: a fraction of every layer's attention heads (or KV groups) and
 * of its MLP channels, the same count in every layer (uniform widths), chosen per layer by that
 * layer's calibration scores.
 *
 * @param heads fraction of heads to remove, in [0, 1): of the KV groups ({@link
 *     HeadMode#KV_GROUPS}) or of the query heads of every KV group ({@link HeadMode#QUERY_HEADS})
 * @param channels fraction of the MLP's intermediate channels to remove, in [0, 1)
 * @param importance how heads and channels are scored
 * @param headMode how grouped-query attention stays consistent
 * @param compensate FLAP's bias compensation: the removed channels' mean contribution becomes a
 *     bias of o_proj / down_proj
 */
public record StructuredSpec(
    double heads, double channels, Importance importance, HeadMode headMode, boolean compensate) {

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
    if (importance == null || headMode == null) {
      throw new IllegalArgumentException("importance and head mode must be given");
    }
  }
}
