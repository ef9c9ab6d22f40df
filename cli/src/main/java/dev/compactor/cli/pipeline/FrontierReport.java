package dev.compactor.cli.pipeline;

import dev.compactor.core.frontier.FrontierPoint;
import dev.compactor.core.frontier.Objective;
import dev.compactor.core.frontier.ParetoFrontier;
import dev.compactor.core.frontier.SmallestWithin;
import dev.compactor.core.frontier.SvgScatterPlot;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.TaskScore;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What a sweep found, from each job's {@code EvaluationCompleted}: the table of {@code frontier.md}
 * (recipe, size, ratio, perplexity, KL, top-1, latency, task accuracy and energy where measured,
 * frontier marks), the choice "smallest within X % of the best quality" and the {@code
 * frontier.svg} plot of size against that quality.
 */
final class FrontierReport {

  /** Size: the smallest stored form of the evaluated artifact ({@code metrics.sizeBytes}). */
  static final Objective SIZE = Objective.minimize("sizeBytes", "size, smallest stored form");

  /** The other objectives a table row can have, in column order; task and energy ones added. */
  static final List<Objective> METRICS =
      List.of(
          Objective.minimize("perplexity", "perplexity"),
          Objective.minimize("klDivergence", "KL (nats/token)"),
          Objective.maximize("top1Agreement", "top-1 agreement"),
          Objective.minimize("prefillMsPerToken", "prefill ms/token"),
          Objective.maximize("decodeTokensPerSecond", "decode tokens/s"));

  /**
   * One sweep job.
   *
   * @param recipe the recipe's derived name
   * @param assignment the swept values, e.g. "sparsity 0.5, bits 4"
   * @param state the job's final state (SUCCEEDED, FAILED, ...), or "SKIPPED" for an invalid recipe
   * @param message why it failed or was skipped, "" otherwise
   * @param evaluation its last EvaluationCompleted, or null
   */
  record Row(
      String recipe,
      String assignment,
      String state,
      String message,
      EvaluationCompleted evaluation,
      double seconds) {}

  /**
   * The quality a sweep chooses by: {@code perplexity}, {@code kl}, {@code top1} or {@code
   * task.<name>} (that task's acc).
   */
  static Objective quality(String spec) {
    return switch (spec) {
      case "perplexity", "ppl" -> METRICS.get(0);
      case "kl" -> METRICS.get(1);
      case "top1" -> METRICS.get(2);
      default -> {
        if (spec.startsWith("task.") && spec.length() > 5) {
          yield Objective.maximize(spec, spec.substring(5) + " accuracy");
        }
        throw new IllegalArgumentException(
            "not supported: quality=" + spec + " (expected perplexity, kl, top1 or task.<name>)");
      }
    };
  }

  private final String sweepName;
  private final String modelName;
  private final List<Row> rows;
  private final Objective quality;
  private final double within;
  private final List<FrontierPoint> points = new ArrayList<>();
  private final List<Objective> columns = new ArrayList<>();
  private final ParetoFrontier sizeQuality;
  private final ParetoFrontier all;
  private final Optional<SmallestWithin.Selection> choice;

  FrontierReport(
      String sweepName, String modelName, List<Row> rows, Objective quality, double within) {
    this.sweepName = sweepName;
    this.modelName = modelName;
    this.rows = List.copyOf(rows);
    this.quality = quality;
    this.within = within;
    Set<String> tasks = new LinkedHashSet<>();
    Set<String> energy = new LinkedHashSet<>();
    for (Row r : rows) {
      if (r.evaluation() != null) {
        r.evaluation().getTasks().forEach(t -> tasks.add("task." + t.getTask()));
        r.evaluation().getExtra().keySet().stream()
            .map(CharSequence::toString)
            .filter(k -> k.toLowerCase(Locale.ROOT).contains("energy"))
            .forEach(energy::add);
      }
    }
    columns.addAll(METRICS);
    tasks.forEach(t -> columns.add(Objective.maximize(t, t.substring(5) + " acc")));
    energy.forEach(e -> columns.add(Objective.minimize(e, e)));
    if (columns.stream().noneMatch(o -> o.name().equals(quality.name()))) {
      columns.add(quality);
    }
    List<FrontierPoint> evaluated = new ArrayList<>();
    for (Row r : rows) {
      FrontierPoint p = new FrontierPoint(r.recipe(), values(r.evaluation()));
      points.add(p);
      if (r.evaluation() != null) {
        evaluated.add(p);
      }
    }
    sizeQuality = ParetoFrontier.of(evaluated, List.of(SIZE, quality));
    // the all-objective frontier uses what every evaluated job measured
    List<Objective> common = new ArrayList<>(List.of(SIZE));
    for (Objective o : columns) {
      if (!evaluated.isEmpty() && evaluated.stream().allMatch(p -> p.value(o.name()) != null)) {
        common.add(o);
      }
    }
    all = ParetoFrontier.of(evaluated, common);
    choice = SmallestWithin.select(evaluated, SIZE, quality, within);
  }

  /** The figures of one evaluation by objective name; empty for none. */
  static Map<String, Double> values(EvaluationCompleted e) {
    Map<String, Double> v = new LinkedHashMap<>();
    if (e == null) {
      return v;
    }
    EvaluationMetrics m = e.getMetrics();
    v.put("sizeBytes", (double) m.getSizeBytes());
    v.put("baselineSizeBytes", (double) m.getBaselineSizeBytes());
    v.put("perplexity", m.getPerplexity());
    v.put("baselinePerplexity", m.getBaselinePerplexity());
    v.put("klDivergence", m.getKlDivergence());
    v.put("top1Agreement", m.getTop1Agreement());
    v.put("prefillMsPerToken", m.getPrefillMsPerToken());
    v.put("decodeTokensPerSecond", m.getDecodeTokensPerSecond());
    for (TaskScore t : e.getTasks()) {
      v.put("task." + t.getTask(), t.getAcc());
    }
    e.getExtra().forEach((k, x) -> v.putIfAbsent(k.toString(), x));
    return v;
  }

  /** The chosen point, if any job was evaluated with a size and the quality. */
  Optional<SmallestWithin.Selection> choice() {
    return choice;
  }

  /** The row of a recipe. */
  Row row(String recipe) {
    return rows.stream().filter(r -> r.recipe().equals(recipe)).findFirst().orElseThrow();
  }

  ParetoFrontier sizeQualityFrontier() {
    return sizeQuality;
  }

  ParetoFrontier allObjectivesFrontier() {
    return all;
  }

  /** {@code frontier.md}'s table and findings (the caller adds how it was run). */
  String markdown() {
    StringBuilder s = new StringBuilder();
    long evaluated = rows.stream().filter(r -> r.evaluation() != null).count();
    s.append(
        String.format(
            Locale.ROOT,
            "Sweep `%s` on `%s`: %d recipes, %d evaluated. Frontier marks: **F** = on the (size,"
                + " %s) Pareto frontier (the plot), **A** = on the frontier of all objectives every"
                + " evaluated job measured (%s).%n%n",
            sweepName,
            modelName,
            rows.size(),
            evaluated,
            quality.label(),
            String.join(", ", all.objectives().stream().map(Objective::label).toList())));
    List<Objective> shown = new ArrayList<>();
    for (Objective o : columns) {
      if (points.stream().anyMatch(p -> p.value(o.name()) != null)) {
        shown.add(o);
      }
    }
    s.append("| # | recipe | swept values | size bytes | ratio |");
    shown.forEach(o -> s.append(' ').append(o.label()).append(" |"));
    s.append(" frontier | state |\n|---|---|---|---:|---:|");
    shown.forEach(o -> s.append("---:|"));
    s.append("---|---|\n");
    String chosen = choice.map(c -> c.chosen().label()).orElse(null);
    for (int i = 0; i < rows.size(); i++) {
      Row r = rows.get(i);
      FrontierPoint p = points.get(i);
      Double size = p.value("sizeBytes");
      Double base = p.value("baselineSizeBytes");
      s.append("| ").append(i + 1).append(" | `").append(r.recipe()).append("` | ");
      s.append(r.assignment()).append(" | ");
      s.append(size == null ? "" : String.format(Locale.ROOT, "%,d", size.longValue()));
      s.append(" | ");
      s.append(
          size == null || base == null || base == 0
              ? ""
              : String.format(Locale.ROOT, "%.3f", size / base));
      s.append(" |");
      for (Objective o : shown) {
        Double v = p.value(o.name());
        s.append(' ').append(v == null ? "" : fmt(v)).append(" |");
      }
      List<String> marks = new ArrayList<>();
      if (sizeQuality.isOnFrontier(r.recipe())) {
        marks.add("F");
      }
      if (all.isOnFrontier(r.recipe())) {
        marks.add("A");
      }
      if (r.recipe().equals(chosen)) {
        marks.add("chosen");
      }
      s.append(' ').append(String.join(" ", marks)).append(" | ");
      s.append(r.state());
      if (!r.message().isEmpty() && !"SUCCEEDED".equals(r.state())) {
        s.append(": ").append(r.message().replace("|", "\\|").replace("\n", " "));
      }
      s.append(" |\n");
    }
    s.append('\n');
    Row any = rows.stream().filter(r -> r.evaluation() != null).findFirst().orElse(null);
    if (any != null) {
      EvaluationMetrics m = any.evaluation().getMetrics();
      s.append(
          String.format(
              Locale.ROOT,
              "Baseline (uncompressed): %,d bytes%s. Size is each model's smallest stored form"
                  + " (`EvaluationCompleted.sizeFormat`); latency as measured by the evaluate"
                  + " stage%s.%n",
              m.getBaselineSizeBytes(),
              m.getBaselinePerplexity() == null
                  ? ""
                  : String.format(Locale.ROOT, ", perplexity %.4f", m.getBaselinePerplexity()),
              any.evaluation().getLatencyMeasuredWith() == null
                  ? ""
                  : " (" + any.evaluation().getLatencyMeasuredWith() + ")"));
      if (columns.stream().noneMatch(o -> o.name().toLowerCase(Locale.ROOT).contains("energy"))) {
        s.append("Energy: not measured (the evaluation reports none), so no energy column.\n");
      }
      s.append('\n');
    }
    if (choice.isPresent()) {
      SmallestWithin.Selection c = choice.get();
      s.append(
          String.format(
              Locale.ROOT,
              "Smallest within %s of the best %s: best is `%s` (%s), bound %s; %d recipes within"
                  + " it; chosen: **`%s`** (%,d bytes, %s %s).%n",
              pct(within),
              quality.label(),
              c.best().label(),
              fmt(c.best().value(quality.name())),
              fmt(c.bound()),
              c.eligible().size(),
              c.chosen().label(),
              c.chosen().value(SIZE.name()).longValue(),
              quality.label(),
              fmt(c.chosen().value(quality.name()))));
    } else {
      s.append("No job was evaluated with a size and ").append(quality.label()).append(".\n");
    }
    return s.toString();
  }

  /** {@code frontier.svg}: size against the chosen quality. */
  String svg() {
    // every row, so the plot's numbers are the table's; rows without figures are listed, not drawn
    List<FrontierPoint> plotted = new ArrayList<>();
    for (int i = 0; i < rows.size(); i++) {
      if (rows.get(i).evaluation() != null) {
        plotted.add(points.get(i));
      }
    }
    long failed = rows.stream().filter(r -> r.evaluation() == null).count();
    String subtitle =
        String.format(
            Locale.ROOT,
            "%s: %d recipes evaluated%s; ringed: smallest within %s of the best %s",
            modelName,
            plotted.size(),
            failed == 0 ? "" : ", " + failed + " skipped or failed (see frontier.md)",
            pct(within),
            quality.label());
    return new SvgScatterPlot(
            "Sweep " + sweepName + ": size vs " + quality.label(),
            subtitle,
            SIZE,
            SvgScatterPlot.Format.BYTES,
            quality,
            SvgScatterPlot.Format.NUMBER)
        .render(points, choice.map(c -> c.chosen().label()).orElse(null));
  }

  private static String pct(double f) {
    return String.format(Locale.ROOT, "%.3g %%", 100 * f).replace(".00 %", " %");
  }

  private static String fmt(double v) {
    if (v != 0 && Math.abs(v) < 0.01) {
      return String.format(Locale.ROOT, "%.5f", v);
    }
    return String.format(Locale.ROOT, "%.4f", v);
  }
}
