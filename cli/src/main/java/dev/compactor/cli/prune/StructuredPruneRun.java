package dev.compactor.cli.prune;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.structured.StructuredPruner;
import dev.compactor.core.prune.structured.StructuredReport;
import dev.compactor.core.prune.structured.StructuredSpec;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The structured branch of {@code compactor prune} ({@link StructuredPruner}): calibration windows
 * as the weight-pruning path draws them, progress per layer on stderr, the summary (per layer the
 * removed heads / KV heads / channels and their scores) on stdout, as JSON with {@code --json}. The
 * settings, calibration and input hashes go to {@code compactor.json} beside the model and to
 * {@code compactor_provenance} in its config.json.
 */
final class StructuredPruneRun {

  static final String PROVENANCE_FILE = "compactor.json";
  static final String PROVENANCE_KEY = "compactor_provenance";
  private static final ObjectMapper JSON = new ObjectMapper();

  private StructuredPruneRun() {}

  static int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    StructuredPruneRequest r = StructuredPruneRequest.parse(argv);
    StructuredSpec spec = r.spec();
    long start = System.nanoTime();
    ModelConfig config = ModelConfig.read(r.model());
    try {
      StructuredPruner.check(config, spec);
    } catch (UnsupportedOperationException e) {
      throw e;
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    if (r.calibration() == null) {
      err.println(
          "note: no --calibration given; scoring on the bundled English Europarl training text ("
              + Corpus.BUILTIN_EUROPARL
              + ")");
    }
    CalibrationText text = CalibrationText.file(r.calibration());
    int seqLen = Math.min(r.seqLen(), config.maxPositions());
    List<int[]> windows;
    try (TextTokenizer tokenizer = Tokenizers.forModel(r.model())) {
      windows = text.corpus().calibrationSamples(tokenizer, r.samples(), seqLen, PruneCommand.SEED);
    }
    err.printf(
        "calibration: %d windows of %d tokens from %s (%.1f s)%n",
        windows.size(), seqLen, text.source(), seconds(start));
    err.printf(
        "pruning %s: heads %s (%s), channels %s, %s importance%s%n",
        r.model(),
        spec.heads(),
        spec.headMode().key(),
        spec.channels(),
        spec.importance().key(),
        spec.compensate() ? ", bias compensation" : "");
    StructuredReport report =
        new StructuredPruner(spec)
            .prune(
                r.model(),
                r.out(),
                windows,
                Map.of(),
                (fraction, message) -> err.printf("[%3.0f%%] %s%n", 100 * fraction, message));
    double total = seconds(start);

    ObjectNode settings = JSON.createObjectNode();
    settings.put("method", "structured");
    settings.put("heads", spec.heads());
    settings.put("channels", spec.channels());
    settings.put("importance", spec.importance().key());
    settings.put("head_mode", spec.headMode().key());
    settings.put("compensate", spec.compensate());
    ObjectNode calibration = JSON.createObjectNode();
    calibration.put("source", text.source());
    calibration.put("sha256", text.sha256());
    calibration.put("samples", r.samples());
    calibration.put("seq_len", seqLen);
    calibration.put("seed", PruneCommand.SEED);
    calibration.put("tokens", report.calibrationTokens());
    ObjectNode provenance = JSON.createObjectNode();
    provenance.put("tool", "compactor prune");
    ArrayNode cmd = provenance.putArray("command_line");
    cmd.add("prune");
    for (String a : argv) {
      cmd.add(a);
    }
    provenance.put("created", Instant.now().toString());
    provenance.put("input_dir", r.model().toAbsolutePath().toString());
    provenance.set("settings", settings);
    provenance.set("calibration", calibration);
    ObjectNode hashes = provenance.putObject("input_sha256");
    for (var e : ModelDirectory.open(r.model()).sha256Files().entrySet()) {
      hashes.put(e.getKey(), e.getValue());
    }
    Files.writeString(r.out().resolve(PROVENANCE_FILE), JSON.writeValueAsString(provenance));
    ObjectNode written = (ObjectNode) JSON.readTree(r.out().resolve("config.json").toFile());
    written.set(PROVENANCE_KEY, provenance);
    ModelDirectory.writeConfig(r.out(), written);

    ObjectNode summary = JSON.createObjectNode();
    summary.put("out", r.out().toAbsolutePath().toString());
    summary.setAll(settings);
    summary.put("heads_before", report.headsBefore());
    summary.put("heads_after", report.headsAfter());
    summary.put("kv_heads_before", report.kvHeadsBefore());
    summary.put("kv_heads_after", report.kvHeadsAfter());
    summary.put("channels_before", report.channelsBefore());
    summary.put("channels_after", report.channelsAfter());
    summary.put("parameters_before", report.parametersBefore());
    summary.put("parameters_after", report.parametersAfter());
    summary.set("calibration", calibration);
    ArrayNode layers = summary.putArray("layers");
    for (StructuredReport.Layer l : report.layers()) {
      ObjectNode o = layers.addObject().put("layer", l.layer());
      o.set("removed_heads", ints(l.removedHeads()));
      o.set("removed_kv_heads", ints(l.removedKvHeads()));
      ArrayNode hs = o.putArray("head_scores");
      for (double s : l.headScores()) {
        hs.add(s);
      }
      o.set("removed_channels", ints(l.removedChannels()));
      if (l.channelScores() != null) {
        o.putObject("channel_scores")
            .put("min", l.channelScores().min())
            .put("mean", l.channelScores().mean())
            .put("max", l.channelScores().max())
            .put("max_removed", l.channelScores().maxRemoved());
      }
    }
    PruneArgs.listFiles(summary.putArray("files"), r.out());
    summary.put("seconds", total);
    if (r.json()) {
      out.println(JSON.writeValueAsString(summary));
    } else {
      out.printf(
          "wrote %s: heads %d -> %d, kv heads %d -> %d, MLP channels %d -> %d,"
              + " parameters %,d -> %,d%n",
          r.out(),
          report.headsBefore(),
          report.headsAfter(),
          report.kvHeadsBefore(),
          report.kvHeadsAfter(),
          report.channelsBefore(),
          report.channelsAfter(),
          report.parametersBefore(),
          report.parametersAfter());
      for (StructuredReport.Layer l : report.layers()) {
        out.printf(
            "  layer %d: removed heads %s, kv heads %s, %d channels%n",
            l.layer(),
            Arrays.toString(l.removedHeads()),
            Arrays.toString(l.removedKvHeads()),
            l.removedChannels().length);
      }
    }
    return 0;
  }

  private static JsonNode ints(int[] values) {
    ArrayNode a = JSON.createArrayNode();
    for (int v : values) {
      a.add(v);
    }
    return a;
  }

  private static double seconds(long start) {
    return (System.nanoTime() - start) / 1e9;
  }
}
