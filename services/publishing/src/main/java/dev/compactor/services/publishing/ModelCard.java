package dev.compactor.services.publishing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.events.ArtifactRef;
import dev.compactor.events.StoredFile;
import dev.compactor.services.evaluation.EvaluationReport;
import dev.compactor.services.evaluation.StoredForms;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The README.md published with a model: what it is, its metrics next to the baseline's (each saying
 * what it measured: which stored form the size is, what latency ran on, what the peak memory
 * covers), every published file with its bytes, the recipe that made it and the lineage of
 * artifacts from the ingested checkpoint to this one.
 */
final class ModelCard {
  private ModelCard() {}

  /** One artifact in the lineage and the stage that produced it. */
  record Lineage(ArtifactRef ref, String stage, Map<String, Double> metrics) {}

  private static final String[][] ROWS = {
    {"Perplexity", "perplexity", "baselinePerplexity"},
    {"Bits per byte", "bitsPerByte", "baselineBitsPerByte"},
    {"KL divergence (nats/token)", "klDivergence", null},
    {"Top-1 agreement", "top1Agreement", null},
    {"Size (bytes)", "sizeBytes", "baselineSizeBytes"},
    {"Parameters", "parameterCount", "baselineParameterCount"},
    {"Sparsity", "sparsity", null},
    {"Peak RSS of the evaluation step (bytes)", "peakRssBytes", null},
    {"Prefill (ms/token)", "prefillMsPerToken", "baselinePrefillMsPerToken"},
    {"Decode (tokens/s)", "decodeTokensPerSecond", "baselineDecodeTokensPerSecond"},
    {"Energy per generated token (J)", "energy.joulesPerToken", "energy.baselineJoulesPerToken"},
    {
      "Energy per prompt token (J)",
      "energy.joulesPerPrefillToken",
      "energy.baselineJoulesPerPrefillToken"
    },
  };

  static String render(
      String name,
      int version,
      String jobId,
      String recipeYaml,
      EvaluationReport report,
      StoredForms published,
      List<Lineage> lineage) {
    return render(name, version, jobId, recipeYaml, report, published, lineage, List.of());
  }

  /** As above, with {@code gateNotes} ({@link QualityGates#notes}) in a section of their own. */
  static String render(
      String name,
      int version,
      String jobId,
      String recipeYaml,
      EvaluationReport report,
      StoredForms published,
      List<Lineage> lineage,
      List<String> gateNotes) {
    Map<String, Double> metrics = report.metrics();
    String datasetUri = report.datasetUri();
    StringBuilder s = new StringBuilder();
    s.append("# ").append(name).append(" v").append(version).append("\n\n");
    s.append("Compressed by Compactor (job `")
        .append(jobId)
        .append("`). The weights are a Hugging")
        .append(" Face safetensors directory; see `config.json` for how they were quantized.\n\n");
    s.append("## Evaluation\n\nMeasured on `")
        .append(datasetUri)
        .append("` against the")
        .append(" uncompressed baseline.\n\n");
    s.append("| metric | this model | baseline |\n|---|---:|---:|\n");
    for (String[] row : ROWS) {
      Double v = metrics.get(row[1]);
      if (v == null) {
        continue;
      }
      Double b = row[2] == null ? null : metrics.get(row[2]);
      String label = row[0];
      if (row[1].startsWith("energy.")) {
        label += energyKind(report.energyMeasuredWith());
      }
      if (row[1].equals("sizeBytes")) {
        label =
            "Size (bytes; this model: its smallest stored form, "
                + (report.sizeFormat() == null ? "form not reported" : report.sizeFormat())
                + "; baseline: all its files)";
      }
      s.append("| ")
          .append(label)
          .append(" | ")
          .append(row[1].startsWith("energy.") ? sig(v) : fmt(v))
          .append(" | ")
          .append(b == null ? "" : row[1].startsWith("energy.") ? sig(b) : fmt(b))
          .append(" |\n");
    }
    s.append(
        "\nQuality was measured by Compactor's forward on the safetensors weights as stored"
            + " (quantized, codebook and shared tensors dequantized; MoEfied MLPs routed), not on"
            + " the GGUF or compressed-tensors exports.");
    if (report.latencyMeasuredWith() != null) {
      s.append(" Latency measured with: ").append(report.latencyMeasuredWith()).append('.');
    }
    if (report.peakMemoryMeasures() != null) {
      s.append(" Peak memory: ").append(report.peakMemoryMeasures()).append('.');
    }
    if (report.energyMeasuredWith() != null) {
      s.append(" Energy ").append(report.energyMeasuredWith()).append('.');
    }
    speedTable(s, metrics, report.energyMeasuredWith());
    nativeSpeedTable(s, metrics, report.nativeSpeedMeasuredWith());
    if (!gateNotes.isEmpty()) {
      s.append("\n\n## Gates\n\n");
      gateNotes.forEach(n -> s.append("- ").append(n).append('\n'));
    }
    s.append("\n\n## Files\n\n| file | format | bytes |\n|---|---|---:|\n");
    for (StoredFile f : published.files()) {
      s.append("| `")
          .append(f.getPath())
          .append("` | ")
          .append(f.getFormat())
          .append(" | ")
          .append(f.getSizeBytes())
          .append(" |\n");
    }
    s.append("\n| stored form | bytes |\n|---|---:|\n");
    for (StoredForms.Form f : published.forms()) {
      s.append("| ").append(f.name()).append(" | ").append(f.bytes()).append(" |\n");
    }
    s.append("\n## Recipe\n\n```yaml\n").append(recipeYaml.strip()).append("\n```\n");
    s.append(
        "\n## Lineage\n\n| # | stage | artifact sha256 | format | bytes |\n|---|---|---|---|---:|\n");
    for (int i = 0; i < lineage.size(); i++) {
      Lineage l = lineage.get(i);
      s.append("| ")
          .append(i)
          .append(" | ")
          .append(l.stage())
          .append(" | `")
          .append(l.ref().getSha256())
          .append("` | ")
          .append(l.ref().getFormat())
          .append(" | ")
          .append(l.ref().getSizeBytes())
          .append(" |\n");
    }
    return s.toString();
  }

  /** ` (measured)` or ` (ESTIMATED)` after an energy row's name. */
  private static String energyKind(String label) {
    if (label == null) {
      return " (source not reported)";
    }
    return label.startsWith("measured") ? " (measured)" : " (ESTIMATED)";
  }

  private static final java.util.regex.Pattern SPEED_KEY =
      java.util.regex.Pattern.compile("speed\\.b([0-9]+)\\.c([0-9]+)\\.decodeTokensPerSecond");

  /** One row per configuration of the latency sweep ({@code speed.b<B>.c<C>.*} metrics). */
  private static void speedTable(StringBuilder s, Map<String, Double> m, String energyLabel) {
    java.util.TreeMap<List<Integer>, String> configs =
        new java.util.TreeMap<>(
            java.util.Comparator.<List<Integer>>comparingInt(l -> l.get(0))
                .thenComparingInt(l -> l.get(1)));
    for (String k : m.keySet()) {
      java.util.regex.Matcher x = SPEED_KEY.matcher(k);
      if (x.matches()) {
        configs.put(
            List.of(Integer.parseInt(x.group(1)), Integer.parseInt(x.group(2))),
            "speed.b" + x.group(1) + ".c" + x.group(2) + ".");
      }
    }
    if (configs.isEmpty()) {
      return;
    }
    boolean energy = m.keySet().stream().anyMatch(k -> k.endsWith(".joulesPerToken"));
    s.append("\n\n### Speed by batch size and context length\n\n")
        .append("Medians of repeated runs; tokens/s count every sequence of the batch. Peak RSS is")
        .append(" the evaluating process's (both models loaded).\n\n")
        .append("| batch | context | prefill tok/s | baseline | decode tok/s | baseline |")
        .append(" peak RSS (bytes) |")
        .append(energy ? " J/token" + energyKind(energyLabel) + " | baseline |" : "")
        .append("\n|---:|---:|---:|---:|---:|---:|---:|")
        .append(energy ? "---:|---:|" : "")
        .append('\n');
    for (Map.Entry<List<Integer>, String> c : configs.entrySet()) {
      String k = c.getValue();
      s.append("| ")
          .append(c.getKey().get(0))
          .append(" | ")
          .append(c.getKey().get(1))
          .append(" | ")
          .append(cell(m, k + "prefillTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "baselinePrefillTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "decodeTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "baselineDecodeTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "peakRssBytes"))
          .append(" |");
      if (energy) {
        s.append(' ')
            .append(cell(m, k + "joulesPerToken"))
            .append(" | ")
            .append(cell(m, k + "baselineJoulesPerToken"))
            .append(" |");
      }
      s.append('\n');
    }
  }

  private static final java.util.regex.Pattern NATIVE_KEY =
      java.util.regex.Pattern.compile("native\\.(.+)\\.decodeSpeedup");

  /**
   * One row per GGUF file measured natively ({@code native.<file>.*} metrics) next to the original
   * as an F32 GGUF run the same way.
   */
  private static void nativeSpeedTable(StringBuilder s, Map<String, Double> m, String label) {
    List<String> files = new java.util.ArrayList<>();
    for (String k : new java.util.TreeMap<>(m).keySet()) {
      java.util.regex.Matcher x = NATIVE_KEY.matcher(k);
      if (x.matches()) {
        files.add(x.group(1));
      }
    }
    if (files.isEmpty()) {
      return;
    }
    s.append("\n\n### Native speed of the GGUF files\n\n")
        .append("Each GGUF file run as stored by the native GGUF decoder (engine `native-gguf`),")
        .append(" against the original model written as an F32 GGUF and run the same way in the")
        .append(" same evaluation; medians of repeated runs, one sequence. ")
        .append(label == null ? "Engine details not reported." : "Measured with: " + label + ".")
        .append("\n\n| file | threads | prompt | decoded | prefill tok/s | F32 reference |")
        .append(" decode tok/s | F32 reference | decode speedup |\n")
        .append("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (String f : files) {
      String k = "native." + f + ".";
      s.append("| `")
          .append(f)
          .append("` | ")
          .append(integer(m, k + "threads"))
          .append(" | ")
          .append(integer(m, k + "promptTokens"))
          .append(" | ")
          .append(integer(m, k + "decodeTokens"))
          .append(" | ")
          .append(cell(m, k + "prefillTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "baselinePrefillTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "decodeTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "baselineDecodeTokensPerSecond"))
          .append(" | ")
          .append(cell(m, k + "decodeSpeedup"))
          .append("× |\n");
    }
  }

  private static String integer(Map<String, Double> m, String key) {
    Double v = m.get(key);
    return v == null ? "" : Long.toString(v.longValue());
  }

  private static String cell(Map<String, Double> m, String key) {
    Double v = m.get(key);
    return v == null ? "" : key.endsWith("oulesPerToken") ? sig(v) : fmt(v);
  }

  /** Four significant digits: joules per token of a small model are fractions of a millijoule. */
  private static String sig(double v) {
    return String.format(Locale.ROOT, "%.4g", v);
  }

  /**
   * The card section of a published LoRA adapter: what it is, what it was trained on and how much
   * it helped, from its {@code compactor.json} (null when missing) and its step's metrics; and that
   * this model's weights already include it.
   */
  static String loraAdapter(String dir, int lineageIndex, Lineage step, byte[] provenanceJson) {
    JsonNode p = null;
    if (provenanceJson != null) {
      try {
        p = new ObjectMapper().readTree(provenanceJson);
      } catch (java.io.IOException e) {
        p = null;
      }
    }
    JsonNode settings = p == null ? null : p.path("settings");
    JsonNode lora = settings == null ? null : settings.path("lora");
    JsonNode cal = p == null ? null : p.path("calibration");
    Map<String, Double> m = step.metrics();
    StringBuilder s = new StringBuilder();
    s.append("\n## LoRA adapter (`").append(dir).append("/`)\n\n");
    s.append(
        "A Hugging Face PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`),"
            + " trained by lineage step ");
    s.append(lineageIndex).append(" (`distill: {lora: ...}`) on the frozen model of step ");
    s.append(lineageIndex - 1).append(" (artifact `");
    s.append(p == null ? "?" : p.path("base_sha256").asText("?")).append("`)");
    s.append(" by distillation from the uncompressed baseline");
    if (cal != null && cal.has("dataset")) {
      s.append(" on `")
          .append(cal.path("dataset").asText())
          .append("` (")
          .append(cal.path("train_windows").asInt())
          .append(" windows of ")
          .append(cal.path("seq_len").asInt())
          .append(" tokens)");
    }
    s.append(".\n\n");
    s.append("| setting | value |\n|---|---|\n");
    if (lora != null && lora.has("rank")) {
      s.append("| rank r | ").append(lora.path("rank").asInt()).append(" |\n");
      s.append("| lora_alpha | ").append(lora.path("alpha").asDouble()).append(" |\n");
      s.append("| target modules | ").append(lora.path("targets")).append(" |\n");
      s.append("| steps | ").append(settings.path("steps").asInt()).append(" |\n");
      s.append("| learning rate | ").append(settings.path("lr").asDouble()).append(" |\n");
      s.append("| KL weight (rest: cross-entropy) | ")
          .append(settings.path("alpha").asDouble())
          .append(" |\n");
    }
    row(s, "adapter parameters", m.get("adapterParameters"));
    row(s, "held-out KL to the baseline before (nats/token)", m.get("loraHeldOutKlBefore"));
    row(s, "held-out KL to the baseline after (nats/token)", m.get("loraHeldOutKlAfter"));
    row(s, "held-out perplexity before", m.get("loraHeldOutPerplexityBefore"));
    row(s, "held-out perplexity after", m.get("loraHeldOutPerplexityAfter"));
    row(s, "training seconds", m.get("loraSeconds"));
    if (cal != null && cal.has("held_out_windows")) {
      s.append("\nHeld out: ")
          .append(cal.path("held_out_windows").asInt())
          .append(" windows of the calibration text's ")
          .append(cal.path("held_out_split").asText("validation"))
          .append(" split, which training never read.");
    }
    s.append(
        "\n\n**The weights of this model already include this adapter** (the LoRA step merged it"
            + " before the later stages ran): do not apply it again. It applies to the model the"
            + " LoRA step started from.");
    if (p != null && "masked-to-base-nonzeros".equals(p.path("lora_delta").asText())) {
      s.append(
          " Its delta was trained masked to that model's non-zero weights, so the merged model"
              + " kept the pruned zeros exactly; PEFT and vLLM apply an adapter unmasked, which"
              + " would also change the pruned weights (`compactor eval --adapter` re-applies"
              + " the mask).");
    }
    return s.append('\n').toString();
  }

  /**
   * The section of a model MoEfied by a prune step ({@code expertsPerToken} among its metrics), or
   * "": how many experts run per token, the FLOPs that saves in Compactor's forward, and which
   * runtimes run it routed.
   */
  static String moefication(List<Lineage> lineage) {
    for (Lineage l : lineage) {
      Map<String, Double> m = l.metrics();
      if (m == null || !m.containsKey("expertsPerToken") || !m.containsKey("flopsPerToken")) {
        continue;
      }
      long e = Math.round(m.get("experts"));
      long k = Math.round(m.get("expertsPerToken"));
      double flops = m.get("flopsPerToken");
      double dense = m.get("denseFlopsPerToken");
      return String.format(
          Locale.ROOT,
          "%n## MoEfication%n%nEvery MLP was split into %d experts of equal width, of which a"
              + " trained linear router runs %d per token (router recall of a token's %d heaviest"
              + " experts on held-out calibration tokens: %.3f). Compactor's forward runs only the"
              + " routed experts: %,.0f FLOPs per token (decoder linears, routers and head) against"
              + " %,.0f dense (%.1f %%); the evaluation above measured that routed forward. The"
              + " weights are the dense model's with the neurons reordered expert by expert, plus"
              + " `mlp.moefication_router` tensors and the `compactor_moefication` config field:"
              + " Hugging Face transformers loads it as the dense model (it reports the router"
              + " tensors as unused) and runs every neuron, with the dense model's FLOPs and"
              + " outputs, not the routed ones; other runtimes are untested.%n",
          e,
          k,
          k,
          m.getOrDefault("routerRecall", Double.NaN),
          flops,
          dense,
          100 * flops / dense);
    }
    return "";
  }

  /**
   * The section of a model whose structured pruning left per-layer MLP widths ({@code
   * intermediateSize.layer<i>} among a prune step's metrics), or "": the widths and which runtimes
   * load such a model.
   */
  static String perLayerWidths(List<Lineage> lineage) {
    for (Lineage l : lineage) {
      Map<String, Double> m = l.metrics();
      if (m == null || !m.containsKey("intermediateSize.layer0")) {
        continue;
      }
      StringBuilder widths = new StringBuilder();
      for (int i = 0; m.containsKey("intermediateSize.layer" + i); i++) {
        widths.append(i == 0 ? "" : ", ").append(Math.round(m.get("intermediateSize.layer" + i)));
      }
      return "\n## Per-layer widths\n\nStructured pruning removed a different number of MLP"
          + " channels from each layer (FLAP's standardised scores over all layers); the layers'"
          + " MLP widths are now "
          + widths
          + " (`compactor_intermediate_sizes` in `config.json`, `intermediate_size` their"
          + " maximum). Only Compactor loads this model: Hugging Face's Llama-family configs have"
          + " one `intermediate_size`, so transformers and vLLM refuse the smaller layers' tensors,"
          + " and Compactor does not write GGUF or compressed-tensors for it.\n";
    }
    return "";
  }

  private static void row(StringBuilder s, String label, Double v) {
    if (v != null) {
      s.append("| ").append(label).append(" | ").append(fmt(v)).append(" |\n");
    }
  }

  private static String fmt(double v) {
    if (v == Math.rint(v) && Math.abs(v) >= 1000 && Math.abs(v) < 1e15) {
      return String.format(Locale.ROOT, "%,d", (long) v);
    }
    return String.format(Locale.ROOT, "%.4f", v);
  }
}
