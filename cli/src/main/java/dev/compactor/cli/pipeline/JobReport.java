package dev.compactor.cli.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.events.EvaluationCompleted;
import dev.compactor.events.EvaluationMetrics;
import dev.compactor.events.JobStatus;
import dev.compactor.events.ModelIngested;
import dev.compactor.events.ModelReady;
import dev.compactor.events.StageCompleted;
import dev.compactor.events.StageFailed;
import dev.compactor.events.StageProgress;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.avro.specific.SpecificRecord;

/** Prints a job's events for people (one line each, and the evaluation table) or as JSON. */
final class JobReport {
  private static final ObjectMapper JSON = new ObjectMapper();

  private JobReport() {}

  /** One line describing an event of the job. */
  static String line(SpecificRecord r) {
    if (r instanceof JobStatus s) {
      return String.format(
          Locale.ROOT,
          "[%s] step %d/%d %s: %s",
          s.getState(),
          s.getStep(),
          s.getTotalSteps(),
          s.getStage() == null ? "-" : s.getStage(),
          s.getMessage());
    }
    if (r instanceof StageProgress p) {
      return String.format(
          Locale.ROOT,
          "  step %d %s: %3.0f%% %s (%.0f s)",
          p.getStep(),
          p.getStage(),
          100 * p.getFraction(),
          p.getMessage(),
          p.getElapsedMs() / 1000.0);
    }
    if (r instanceof StageCompleted c) {
      return String.format(
          Locale.ROOT,
          "StageCompleted step %d (%s) in %.1f s%s",
          c.getStep(),
          c.getStage(),
          c.getDurationMs() / 1000.0,
          effect(c).isEmpty() ? "" : ": " + effect(c));
    }
    if (r instanceof StageFailed f) {
      return "StageFailed step " + f.getStep() + " (" + f.getStage() + "): " + f.getReason();
    }
    if (r instanceof ModelIngested m) {
      return String.format(
          Locale.ROOT,
          "ModelIngested %s (%s), %,d parameters, %s, %,d bytes",
          m.getArchitecture(),
          m.getModelType(),
          m.getParameterCount(),
          m.getDtype(),
          m.getSizeBytes());
    }
    if (r instanceof EvaluationCompleted e) {
      return "EvaluationCompleted for model "
          + e.getModel().getSha256().toString().substring(0, 12);
    }
    if (r instanceof ModelReady m) {
      return "ModelReady " + m.getName() + " v" + m.getVersion() + " at " + m.getUri();
    }
    return r.getSchema().getName() + " " + r;
  }

  /** The metrics of a step that say what it did to the model, in the order people read them. */
  private static final List<String> EFFECT_METRICS =
      List.of(
          "sparsity",
          "keptExperts",
          "experts",
          "studentLayers",
          "bitsPerWeight",
          "sizeBytes",
          "parameterCount",
          "perplexity",
          "perplexityRatio",
          "klDivergence");

  /** Metrics that count things: printed as whole numbers ("keptExperts 6", not "6.0000"). */
  private static final Set<String> COUNT_METRICS =
      Set.of("keptExperts", "experts", "studentLayers", "sizeBytes", "parameterCount");

  /** What one step did, e.g. "sparsity 0.3000, bitsPerWeight 4.2500". */
  static String effect(StageCompleted c) {
    List<String> parts = new java.util.ArrayList<>();
    for (String key : EFFECT_METRICS) {
      Double v = get(c.getMetrics(), key);
      if (v != null) {
        parts.add(key + " " + (COUNT_METRICS.contains(key) ? count(v) : fmt(v)));
      }
    }
    return String.join(", ", parts);
  }

  /** One line per completed step: what it did to the model. */
  static void steps(List<StageCompleted> steps, PrintStream out) {
    if (steps.isEmpty()) {
      return;
    }
    out.println("Steps");
    for (StageCompleted c : steps) {
      out.printf(
          Locale.ROOT,
          "  %d %-10s %7.1f s  %s%n",
          c.getStep(),
          c.getStage(),
          c.getDurationMs() / 1000.0,
          effect(c));
    }
    out.println();
  }

  /** The baseline-vs-compressed table. */
  static void table(EvaluationCompleted e, PrintStream out) {
    EvaluationMetrics m = e.getMetrics();
    Map<String, Double> x = e.getExtra();
    out.println("Evaluation (baseline vs compressed) on " + e.getDatasetUri());
    out.printf(
        Locale.ROOT, "  %-26s %16s %16s %10s%n", "metric", "baseline", "compressed", "ratio");
    row(out, "perplexity", m.getBaselinePerplexity(), m.getPerplexity());
    row(out, "bits per byte", m.getBaselineBitsPerByte(), m.getBitsPerByte());
    row(out, "KL divergence (nats/tok)", null, m.getKlDivergence());
    row(out, "top-1 agreement", null, m.getTop1Agreement());
    row(out, "size (bytes)", (double) m.getBaselineSizeBytes(), (double) m.getSizeBytes());
    row(
        out,
        "parameters",
        m.getBaselineParameterCount() == null ? null : (double) m.getBaselineParameterCount(),
        m.getParameterCount() == null ? null : (double) m.getParameterCount());
    row(out, "sparsity", null, m.getSparsity());
    row(out, "prefill (ms/token)", get(x, "baselinePrefillMsPerToken"), m.getPrefillMsPerToken());
    row(
        out,
        "decode (tokens/s)",
        get(x, "baselineDecodeTokensPerSecond"),
        m.getDecodeTokensPerSecond());
    row(out, "eval (tokens/s)", null, m.getEvalTokensPerSecond());
  }

  static void modelReady(ModelReady r, PrintStream out) {
    out.println("ModelReady: " + r.getName() + " v" + r.getVersion());
    out.println("  uri:        " + r.getUri());
    out.println("  model card: " + r.getModelCardUri());
    out.println(
        "  artifact:   "
            + r.getArtifact().getSha256()
            + " ("
            + r.getArtifact().getFormat()
            + ", "
            + r.getArtifact().getSizeBytes()
            + " bytes)");
    r.getExports()
        .forEach(x -> out.println("  export:     " + x.getUri() + " (" + x.getFormat() + ")"));
    out.println("  lineage:    " + r.getLineage().size() + " artifacts from ingestion to now");
  }

  /** The one JSON object {@code demo --json} prints. */
  static String json(EvaluationCompleted e, ModelReady r) throws IOException {
    ObjectNode o = JSON.createObjectNode();
    o.set("evaluation", e == null ? null : JSON.readTree(e.toString()));
    o.set("modelReady", r == null ? null : JSON.readTree(r.toString()));
    return JSON.writeValueAsString(o);
  }

  private static Double get(Map<String, Double> m, String key) {
    for (Map.Entry<String, Double> e : m.entrySet()) {
      if (e.getKey().toString().equals(key)) {
        return e.getValue();
      }
    }
    return null;
  }

  private static void row(PrintStream out, String name, Double base, Double value) {
    if (base == null && value == null) {
      return;
    }
    String ratio = base != null && value != null && base != 0 ? fmt(value / base) : "";
    out.printf(
        Locale.ROOT,
        "  %-26s %16s %16s %10s%n",
        name,
        base == null ? "" : fmt(base),
        value == null ? "" : fmt(value),
        ratio);
  }

  private static String count(double v) {
    return v == Math.rint(v) ? String.format(Locale.ROOT, "%,d", (long) v) : fmt(v);
  }

  private static String fmt(double v) {
    if (v == Math.rint(v) && Math.abs(v) >= 1000) {
      return String.format(Locale.ROOT, "%,d", (long) v);
    }
    return String.format(Locale.ROOT, "%.4f", v);
  }
}
