package dev.compactor.services.publishing;

import dev.compactor.core.recipe.PublishParams.Gates;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Applies a recipe's quality gates to an evaluation's metrics and says, for each gate that fails,
 * what was allowed, what was measured and by how much it missed.
 */
public final class QualityGates {
  private QualityGates() {}

  /**
   * The failed gates, one sentence each; empty when every configured gate passes.
   *
   * @throws IllegalArgumentException when a gate needs a metric the evaluation did not measure
   */
  public static List<String> failures(Gates gates, Map<String, Double> metrics) {
    return failures(gates, metrics, null);
  }

  /**
   * As {@link #failures(Gates, Map)}; {@code sizeFormat} names the stored form {@code sizeBytes} is
   * (see {@code StoredForms}), so a failed size gate says which bytes it compared.
   */
  public static List<String> failures(Gates gates, Map<String, Double> metrics, String sizeFormat) {
    return failures(gates, metrics, sizeFormat, null);
  }

  /**
   * As {@link #failures(Gates, Map, String)}; {@code energyLabel} ({@code measured: ...} or {@code
   * estimated: ...}) is quoted in a failed energy gate so nobody takes an estimate for a reading.
   */
  public static List<String> failures(
      Gates gates, Map<String, Double> metrics, String sizeFormat, String energyLabel) {
    List<String> out = new ArrayList<>();
    if (gates == null) {
      return out;
    }
    if (gates.maxPerplexityIncrease() != null) {
      double ppl = need(metrics, "perplexity", "max_perplexity_increase");
      double base = need(metrics, "baselinePerplexity", "max_perplexity_increase");
      double increase = ppl / base - 1;
      if (increase > gates.maxPerplexityIncrease()) {
        out.add(
            String.format(
                Locale.ROOT,
                "max_perplexity_increase: perplexity rose %.2f%% (%.4f -> %.4f), allowed %.2f%%,"
                    + " over by %.2f points",
                100 * increase,
                base,
                ppl,
                100 * gates.maxPerplexityIncrease(),
                100 * (increase - gates.maxPerplexityIncrease())));
      }
    }
    if (gates.maxKlDivergence() != null) {
      double kl = need(metrics, "klDivergence", "max_kl_divergence");
      if (kl > gates.maxKlDivergence()) {
        out.add(
            String.format(
                Locale.ROOT,
                "max_kl_divergence: KL %.5f nats/token, allowed %.5f, over by %.5f",
                kl,
                gates.maxKlDivergence(),
                kl - gates.maxKlDivergence()));
      }
    }
    if (gates.minTop1Agreement() != null) {
      double top1 = need(metrics, "top1Agreement", "min_top1_agreement");
      if (top1 < gates.minTop1Agreement()) {
        out.add(
            String.format(
                Locale.ROOT,
                "min_top1_agreement: top-1 agreement %.4f, required %.4f, short by %.4f",
                top1,
                gates.minTop1Agreement(),
                gates.minTop1Agreement() - top1));
      }
    }
    if (gates.maxSizeRatio() != null) {
      double size = need(metrics, "sizeBytes", "max_size_ratio");
      double base = need(metrics, "baselineSizeBytes", "max_size_ratio");
      double ratio = size / base;
      if (ratio > gates.maxSizeRatio()) {
        out.add(
            String.format(
                Locale.ROOT,
                "max_size_ratio: size ratio %.4f (%d bytes of %s against the baseline's %d),"
                    + " allowed %.4f, over by %.4f",
                ratio,
                (long) size,
                sizeFormat == null ? "a stored form not reported" : "stored form " + sizeFormat,
                (long) base,
                gates.maxSizeRatio(),
                ratio - gates.maxSizeRatio()));
      }
    }
    if (gates.maxTaskAccuracyDrop() != null) {
      taskGate(gates.maxTaskAccuracyDrop(), metrics, out);
    }
    if (gates.maxEnergyPerTokenRatio() != null) {
      double ratio = energyRatio(metrics);
      if (ratio > gates.maxEnergyPerTokenRatio()) {
        out.add(
            String.format(
                Locale.ROOT,
                "max_energy_per_token_ratio: %.4f J/token against the baseline's %.4f, ratio"
                    + " %.4f, allowed %.4f (%s)",
                metrics.get("energy.joulesPerToken"),
                metrics.get("energy.baselineJoulesPerToken"),
                ratio,
                gates.maxEnergyPerTokenRatio(),
                energyLabel == null ? "energy source not reported" : energyLabel));
      }
    }
    if (gates.minDecodeSpeedup() != null) {
      double speedup = decodeSpeedup(metrics);
      if (speedup < gates.minDecodeSpeedup()) {
        out.add(
            String.format(
                Locale.ROOT,
                "min_decode_speedup: decode %.1f tokens/s against the baseline's %.1f, speedup"
                    + " %.4f, required %.4f",
                metrics.get("decodeTokensPerSecond"),
                metrics.get("baselineDecodeTokensPerSecond"),
                speedup,
                gates.minDecodeSpeedup()));
      }
    }
    if (gates.minNativeDecodeSpeedup() != null) {
      for (Map.Entry<String, Double> e : nativeDecodeSpeedups(metrics).entrySet()) {
        if (e.getValue() < gates.minNativeDecodeSpeedup()) {
          String k = "native." + e.getKey() + ".";
          out.add(
              String.format(
                  Locale.ROOT,
                  "min_native_decode_speedup: %s decodes %.1f tokens/s natively against the"
                      + " original's %.1f as an F32 GGUF, speedup %.4f, required %.4f",
                  e.getKey(),
                  metrics.get(k + "decodeTokensPerSecond"),
                  metrics.get(k + "baselineDecodeTokensPerSecond"),
                  e.getValue(),
                  gates.minNativeDecodeSpeedup()));
        }
      }
    }
    return out;
  }

  /**
   * Each GGUF file's native decode speedup over the F32 reference ({@code
   * native.<file>.decodeSpeedup}), by file.
   *
   * @throws IllegalArgumentException when the evaluation measured no native speed
   */
  private static Map<String, Double> nativeDecodeSpeedups(Map<String, Double> metrics) {
    Map<String, Double> out = new java.util.TreeMap<>();
    for (Map.Entry<String, Double> e : metrics.entrySet()) {
      String k = e.getKey();
      if (k.startsWith("native.") && k.endsWith(".decodeSpeedup")) {
        out.put(
            k.substring("native.".length(), k.length() - ".decodeSpeedup".length()), e.getValue());
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          "gate min_native_decode_speedup needs native speed, which the evaluation did not measure"
              + " (add native_speed: true to the evaluate step)");
    }
    return out;
  }

  /**
   * What the model card says about gates whose figures need a label: an energy gate always says
   * whether it compared measured or estimated joules, and from what.
   */
  public static List<String> notes(Gates gates, Map<String, Double> metrics, String energyLabel) {
    List<String> out = new ArrayList<>();
    if (gates != null && gates.maxEnergyPerTokenRatio() != null) {
      boolean estimated = energyLabel == null || energyLabel.startsWith("estimated");
      out.add(
          String.format(
              Locale.ROOT,
              "max_energy_per_token_ratio %.4f held (ratio %.4f) on %s energy figures (%s)%s",
              gates.maxEnergyPerTokenRatio(),
              energyRatio(metrics),
              estimated ? "ESTIMATED" : "measured",
              energyLabel == null ? "source not reported" : energyLabel,
              estimated ? ": an estimate, not a reading of a power counter" : ""));
    }
    if (gates != null && gates.minDecodeSpeedup() != null) {
      out.add(
          String.format(
              Locale.ROOT,
              "min_decode_speedup %.4f held (speedup %.4f)",
              gates.minDecodeSpeedup(),
              decodeSpeedup(metrics)));
    }
    if (gates != null && gates.minNativeDecodeSpeedup() != null) {
      nativeDecodeSpeedups(metrics)
          .forEach(
              (file, speedup) ->
                  out.add(
                      String.format(
                          Locale.ROOT,
                          "min_native_decode_speedup %.4f held for %s (speedup %.4f over the"
                              + " original as an F32 GGUF, both run natively)",
                          gates.minNativeDecodeSpeedup(),
                          file,
                          speedup)));
    }
    return out;
  }

  private static double energyRatio(Map<String, Double> metrics) {
    double c = need(metrics, "energy.joulesPerToken", "max_energy_per_token_ratio");
    double b = need(metrics, "energy.baselineJoulesPerToken", "max_energy_per_token_ratio");
    return c / b;
  }

  private static double decodeSpeedup(Map<String, Double> metrics) {
    double c = need(metrics, "decodeTokensPerSecond", "min_decode_speedup");
    double b = need(metrics, "baselineDecodeTokensPerSecond", "min_decode_speedup");
    return c / b;
  }

  /** Every task's {@code task.<name>.acc} against its {@code task.<name>.baselineAcc}. */
  private static void taskGate(double maxDrop, Map<String, Double> metrics, List<String> out) {
    int tasks = 0;
    for (Map.Entry<String, Double> e : new java.util.TreeMap<>(metrics).entrySet()) {
      String k = e.getKey();
      if (!k.startsWith("task.") || !k.endsWith(".acc")) {
        continue;
      }
      tasks++;
      String task = k.substring("task.".length(), k.length() - ".acc".length());
      double acc = e.getValue();
      double base = need(metrics, "task." + task + ".baselineAcc", "max_task_accuracy_drop");
      if (base - acc > maxDrop) {
        out.add(
            String.format(
                Locale.ROOT,
                "max_task_accuracy_drop: %s accuracy %.4f against the baseline's %.4f, a drop of"
                    + " %.4f, allowed %.4f",
                task,
                acc,
                base,
                base - acc,
                maxDrop));
      }
    }
    if (tasks == 0) {
      throw new IllegalArgumentException(
          "gate max_task_accuracy_drop needs task scores, which the evaluation did not measure"
              + " (add tasks: {builtin: [...]} to the evaluate step)");
    }
  }

  private static double need(Map<String, Double> metrics, String name, String gate) {
    Double v = metrics.get(name);
    if (v == null) {
      throw new IllegalArgumentException(
          "gate "
              + gate
              + " needs the metric '"
              + name
              + "', which the evaluation did not measure (turn it on in the evaluate step)");
    }
    return v;
  }
}
