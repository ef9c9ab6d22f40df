package dev.compactor.core.prune.structured;

import java.util.List;

/**
 * What structured pruning did, layer by layer.
 *
 * @param spec the settings
 * @param headsBefore query heads per layer before; {@code headsAfter} after
 * @param kvHeadsBefore KV heads per layer before; {@code kvHeadsAfter} after
 * @param channelsBefore MLP intermediate channels per layer before; {@code channelsAfter} after
 * @param parametersBefore parameters of the input model; {@code parametersAfter} of the output
 * @param calibrationTokens tokens every layer was scored on
 * @param layers per decoder layer, what was removed and the scores it was chosen by
 */
public record StructuredReport(
    StructuredSpec spec,
    int headsBefore,
    int headsAfter,
    int kvHeadsBefore,
    int kvHeadsAfter,
    int channelsBefore,
    int channelsAfter,
    long parametersBefore,
    long parametersAfter,
    long calibrationTokens,
    List<Layer> layers) {

  public StructuredReport {
    layers = List.copyOf(layers);
  }

  /** Min, mean and max of a layer's scores, and the highest score among the removed. */
  public record Summary(double min, double mean, double max, double maxRemoved) {
    static Summary of(double[] scores, int[] removed) {
      double min = Double.POSITIVE_INFINITY;
      double max = Double.NEGATIVE_INFINITY;
      double sum = 0;
      for (double s : scores) {
        min = Math.min(min, s);
        max = Math.max(max, s);
        sum += s;
      }
      double maxRemoved = Double.NaN;
      for (int r : removed) {
        maxRemoved = Double.isNaN(maxRemoved) ? scores[r] : Math.max(maxRemoved, scores[r]);
      }
      return new Summary(min, sum / scores.length, max, maxRemoved);
    }
  }

  /**
   * One decoder layer.
   *
   * @param removedHeads removed query heads (old indices; empty without head pruning)
   * @param removedKvHeads removed KV heads (old indices)
   * @param headScores every query head's score (empty without head pruning)
   * @param removedChannels removed MLP channels (old indices; empty without channel pruning)
   * @param channelScores summary of the channel scores (null without channel pruning)
   */
  public record Layer(
      int layer,
      int[] removedHeads,
      int[] removedKvHeads,
      double[] headScores,
      int[] removedChannels,
      Summary channelScores) {}
}
