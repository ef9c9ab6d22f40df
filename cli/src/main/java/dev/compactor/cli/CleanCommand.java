package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.clean.CleanOptions;
import dev.compactor.core.data.clean.DataCleaner;
import dev.compactor.core.data.clean.DocumentFile;
import dev.compactor.core.data.clean.ModelPerplexityScorer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code compactor clean}: removes exact and near duplicates and low-quality documents from a text
 * or JSONL file of calibration or distillation data, writes what it kept in the same layout and
 * reports what it dropped and why. The options are {@link CleanOptions}' keys with dashes.
 */
final class CleanCommand implements Command {

  @Override
  public String name() {
    return "clean";
  }

  @Override
  public String summary() {
    return "dedup (exact, MinHash LSH) and filter (length, language, repetition, perplexity) text"
        + " or JSONL data, with a report";
  }

  @Override
  public String usage() {
    return "--in FILE --out FILE [--dedup exact,minhash] [--jaccard 0.8] [--num-perm 128]"
        + " [--bands BxR] [--shingle word:5|char:N] [--min-chars N] [--max-chars N]"
        + " [--min-words N] [--max-words N] [--lang en] [--lang-min-score X] [--repetition]"
        + " [--ppl-model DIR [--ppl-max-quantile 0.95] [--ppl-min-quantile Q] [--ppl-max X]]"
        + " [--seed N] [--report FILE] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Set<String> values = new HashSet<>(Set.of("in", "out", "report"));
    for (String k : CleanOptions.KEYS) {
      if (!k.equals("repetition")) {
        values.add(k.replace('_', '-'));
      }
    }
    Args a = Args.parse(argv, values, Set.of("json", "repetition"));
    Path in = a.requiredPath("in");
    Path outFile = a.requiredPath("out");
    Map<String, String> options = new LinkedHashMap<>();
    for (String k : CleanOptions.KEYS) {
      String opt = k.replace('_', '-');
      if (a.present(opt)) {
        options.put(k, a.required(opt));
      }
    }
    if (a.has("repetition")) {
      options.put("repetition", "true");
    }
    CleanOptions.Parsed parsed;
    try {
      parsed = CleanOptions.parse(options, "--");
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage().replace('_', '-'));
    }
    if (!parsed.spec().isActive()) {
      throw new UsageException(
          "nothing to do: give --dedup, a length bound, --lang, --repetition or --ppl-model");
    }
    if (!Files.isRegularFile(in)) {
      throw new UsageException("--in: expected a file, found none at " + in);
    }
    DocumentFile.Contents contents = DocumentFile.read(in);
    long start = System.nanoTime();
    DataCleaner.Result result;
    if (parsed.pplModel() != null) {
      Path model = Path.of(parsed.pplModel());
      if (!Files.isRegularFile(model.resolve("config.json"))) {
        throw new UsageException(
            "--ppl-model: expected a model directory with config.json at " + model);
      }
      try (ModelPerplexityScorer scorer = ModelPerplexityScorer.open(model)) {
        result = DataCleaner.clean(contents.documents(), parsed.spec(), scorer);
      }
    } else {
      result = DataCleaner.clean(contents.documents(), parsed.spec(), null);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    DocumentFile.write(outFile, contents.layout(), result.kept());

    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode node = result.report().toJson(json);
    node.put("in", in.toString());
    node.put("out", outFile.toString());
    node.put("layout", contents.layout().name().toLowerCase(java.util.Locale.ROOT));
    node.put("seconds", Math.round(seconds * 1000) / 1000.0);
    String jsonText = json.writeValueAsString(node);
    if (a.present("report")) {
      Files.writeString(Path.of(a.required("report")), jsonText + "\n", StandardCharsets.UTF_8);
    }
    if (a.has("json")) {
      out.println(jsonText);
    } else {
      out.print(result.report().toText());
      out.printf(java.util.Locale.ROOT, "wrote %s (%.1f s)%n", outFile, seconds);
    }
    return 0;
  }
}
