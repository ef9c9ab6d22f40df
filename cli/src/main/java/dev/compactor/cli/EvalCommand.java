package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EnergyMeter;
import dev.compactor.core.metrics.EnergyMeters;
import dev.compactor.core.metrics.PeakMemory;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.SpeedPoint;
import dev.compactor.core.metrics.SpeedSweep;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code compactor eval}: perplexity and bits per byte of a model on a text file, and with {@code
 * --baseline} how far its predictions moved from the baseline model's (KL divergence, top-1
 * agreement). With {@code --speed-batches}/{@code --speed-contexts}/{@code --energy} it also runs
 * the latency sweep ({@link SpeedSweep}) of the model (and the baseline), with energy per token
 * from the best meter here, labelled measured or estimated (see cli/docs/energy-speed.md).
 */
final class EvalCommand implements Command {

  private static final int DEFAULT_MAX_SEQ_LEN = 512;

  @Override
  public String name() {
    return "eval";
  }

  @Override
  public String summary() {
    return "perplexity, bits per byte and (with --baseline) KL divergence on a text file";
  }

  @Override
  public String usage() {
    return "--model DIR [--adapter PEFT_DIR] --text FILE [--seq-len N] [--stride N]"
        + " [--baseline DIR] [--json] [--layer-by-layer] [--energy] [--speed-batches 1,4]"
        + " [--speed-contexts 64,128] [--decode-tokens N] [--repeats N]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model",
                "adapter",
                "text",
                "seq-len",
                "stride",
                "baseline",
                "speed-batches",
                "speed-contexts",
                "decode-tokens",
                "repeats"),
            Set.of("json", "layer-by-layer", "energy"));
    SpeedSweep.Config sweep = sweepConfig(args);
    Path modelDir = args.requiredPath("model");
    Path textFile = args.requiredPath("text");
    int seqLenOpt = args.integer("seq-len", 0);
    int strideOpt = args.integer("stride", 0);
    if (args.present("seq-len") && seqLenOpt < 2) {
      throw new UsageException("--seq-len must be at least 2, found " + seqLenOpt);
    }
    if (args.present("stride") && strideOpt < 1) {
      throw new UsageException("--stride must be at least 1, found " + strideOpt);
    }
    boolean layerByLayer = args.has("layer-by-layer");
    if (layerByLayer && args.present("adapter")) {
      throw new UsageException("--adapter needs the resident model; drop --layer-by-layer");
    }
    String text = readText(textFile);
    ProgressPrinter progress = new ProgressPrinter(err);
    try (TextTokenizer tokenizer = Tokenizers.forModel(modelDir);
        CausalLM model =
            args.present("adapter")
                ? ModelLoading.adapted(modelDir, args.requiredPath("adapter"))
                : open(modelDir, layerByLayer)) {
      int seqLen =
          seqLenOpt > 0 ? seqLenOpt : Math.min(model.maxSequenceLength(), DEFAULT_MAX_SEQ_LEN);
      int stride = strideOpt > 0 ? strideOpt : seqLen;
      if (stride > seqLen) {
        throw new UsageException("--stride " + stride + " must not exceed --seq-len " + seqLen);
      }
      PerplexityResult ppl =
          new PerplexityEvaluator(seqLen, stride).evaluate(model, tokenizer, text, progress);
      DivergenceResult div = null;
      if (args.present("baseline")) {
        try (CausalLM baseline = open(Path.of(args.required("baseline")), layerByLayer)) {
          div =
              new DivergenceEvaluator(seqLen, stride)
                  .evaluate(baseline, model, tokenizer, text, progress);
        }
      }
      PeakMemory memory = PeakMemory.snapshot();
      Sweep speed = null;
      if (sweep != null) {
        speed = sweep(args, sweep, model, tokenizer.encode(text), layerByLayer);
      }
      if (args.has("json")) {
        ObjectNode node = json(ppl, div, seqLen, stride, memory);
        if (speed != null) {
          speed.toJson(node);
        }
        out.println(node);
      } else {
        print(out, modelDir, textFile, ppl, div, seqLen, stride, memory);
        if (speed != null) {
          speed.print(out);
        }
      }
    }
    return 0;
  }

  /** The sweep asked for, or null when no speed or energy option is given. */
  private static SpeedSweep.Config sweepConfig(Args args) throws UsageException {
    boolean any =
        args.has("energy")
            || args.present("speed-batches")
            || args.present("speed-contexts")
            || args.present("decode-tokens")
            || args.present("repeats");
    if (!any) {
      return null;
    }
    SpeedSweep.Config d = SpeedSweep.Config.DEFAULT;
    try {
      return new SpeedSweep.Config(
          ints(args, "speed-batches", d.batchSizes()),
          ints(args, "speed-contexts", d.contextLengths()),
          args.integer("decode-tokens", d.decodeTokens()),
          args.integer("repeats", d.repeats()));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
  }

  private static List<Integer> ints(Args args, String option, List<Integer> fallback)
      throws UsageException {
    if (!args.present(option)) {
      return fallback;
    }
    List<Integer> out = new ArrayList<>();
    for (String part : args.required(option).split(",")) {
      try {
        out.add(Integer.parseInt(part.trim()));
      } catch (NumberFormatException e) {
        throw new UsageException(
            "--" + option + " must be a comma-separated list of integers, found " + part);
      }
    }
    return out;
  }

  /** The sweep of the model and, with {@code --baseline}, of the baseline, with one meter. */
  private static Sweep sweep(
      Args args, SpeedSweep.Config config, CausalLM model, int[] tokens, boolean layerByLayer)
      throws Exception {
    EnergyMeters.Choice choice = args.has("energy") ? EnergyMeters.forThisMachine(-1) : null;
    try (EnergyMeter meter = choice == null ? null : choice.meter()) {
      SpeedSweep sweep = new SpeedSweep(config, meter);
      List<SpeedPoint> c = sweep.measure(model, tokens).points();
      List<SpeedPoint> b = null;
      if (args.present("baseline")) {
        try (CausalLM baseline = open(Path.of(args.required("baseline")), layerByLayer)) {
          b = sweep.measure(baseline, tokens).points();
        }
      }
      return new Sweep(c, b, meter == null ? null : meter.label(), choice);
    }
  }

  /** Sweep results of the model and the baseline (null without one), and the energy label. */
  private record Sweep(
      List<SpeedPoint> model,
      List<SpeedPoint> baseline,
      String energy,
      EnergyMeters.Choice choice) {

    void toJson(ObjectNode node) {
      var arr = node.putArray("speed");
      for (int i = 0; i < model.size(); i++) {
        ObjectNode p = arr.addObject();
        put(p, "", model.get(i));
        if (baseline != null) {
          put(p, "baseline", baseline.get(i));
        }
      }
      if (energy != null) {
        ObjectNode e = node.putObject("energy");
        e.put("label", energy);
        e.put("kind", choice.meter().kind().label());
        e.put("source", choice.meter().source());
        choice.notUsed().forEach(e.putArray("notUsed")::add);
      }
    }

    private static void put(ObjectNode p, String prefix, SpeedPoint s) {
      if (prefix.isEmpty()) {
        p.put("batch", s.batch()).put("contextLength", s.contextLength());
        p.put("decodeTokens", s.decodeTokens());
      }
      p.put(name(prefix, "prefillTokensPerSecond"), s.prefillTokensPerSecond());
      p.put(name(prefix, "decodeTokensPerSecond"), s.decodeTokensPerSecond());
      p.put(name(prefix, "peakRssBytes"), s.peakRssBytes());
      if (!Double.isNaN(s.decodeJoulesPerToken())) {
        p.put(name(prefix, "prefillJoulesPerToken"), s.prefillJoulesPerToken());
        p.put(name(prefix, "decodeJoulesPerToken"), s.decodeJoulesPerToken());
      }
    }

    private static String name(String prefix, String field) {
      return prefix.isEmpty()
          ? field
          : prefix + Character.toUpperCase(field.charAt(0)) + field.substring(1);
    }

    void print(PrintStream out) {
      out.printf(
          "%nspeed (median of runs; tok/s over all sequences of the batch; peak RSS of this"
              + " process)%n");
      out.printf(
          "%-5s %-7s %12s %12s %10s %12s %12s%s%n",
          "batch",
          "context",
          "prefill t/s",
          "decode t/s",
          "peak MiB",
          energy == null ? "" : "prefill J/t",
          energy == null ? "" : "decode J/t",
          baseline == null ? "" : "   | baseline prefill t/s, decode t/s, decode J/t");
      for (int i = 0; i < model.size(); i++) {
        SpeedPoint s = model.get(i);
        out.printf(
            "%-5d %-7d %12.1f %12.1f %10s %12s %12s",
            s.batch(),
            s.contextLength(),
            s.prefillTokensPerSecond(),
            s.decodeTokensPerSecond(),
            s.peakRssBytes() > 0 ? String.format("%.1f", s.peakRssBytes() / 1048576.0) : "n/a",
            energy == null ? "" : String.format("%.3e", s.prefillJoulesPerToken()),
            energy == null ? "" : String.format("%.3e", s.decodeJoulesPerToken()));
        if (baseline != null) {
          SpeedPoint b = baseline.get(i);
          out.printf(
              "   | %.1f, %.1f%s",
              b.prefillTokensPerSecond(),
              b.decodeTokensPerSecond(),
              energy == null ? "" : String.format(", %.3e", b.decodeJoulesPerToken()));
        }
        out.println();
      }
      if (energy != null) {
        out.printf("energy           %s%n", energy);
        for (String n : choice.notUsed()) {
          out.printf("  not used       %s%n", n);
        }
      }
    }
  }

  private static CausalLM open(Path dir, boolean layerByLayer) throws IOException {
    return layerByLayer ? ModelLoading.layerByLayer(dir) : ModelLoading.resident(dir);
  }

  private static String readText(Path file) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new IOException("expected a UTF-8 text file at " + file + " but found none");
    }
    return Files.readString(file, StandardCharsets.UTF_8);
  }

  private static ObjectNode json(
      PerplexityResult ppl, DivergenceResult div, int seqLen, int stride, PeakMemory memory) {
    ObjectNode node = new ObjectMapper().createObjectNode();
    node.put("perplexity", ppl.perplexity());
    node.put("bitsPerByte", ppl.bitsPerByte());
    node.put("tokens", ppl.tokens());
    node.put("tokensPerSecond", ppl.tokensPerSecond());
    node.put("nll", ppl.nll());
    node.put("bytes", ppl.bytes());
    node.put("seqLen", seqLen);
    node.put("stride", stride);
    if (div != null) {
      node.put("klDivergence", div.klDivergence());
      node.put("klMax", div.klMax());
      node.put("top1Agreement", div.top1Agreement());
      node.put("baselinePerplexity", div.baselinePerplexity());
    }
    node.put("peakRssBytes", memory.peakRssBytes());
    return node;
  }

  private static void print(
      PrintStream out,
      Path model,
      Path text,
      PerplexityResult ppl,
      DivergenceResult div,
      int seqLen,
      int stride,
      PeakMemory memory) {
    out.printf("model            %s%n", model);
    out.printf("text             %s (%d bytes scored)%n", text, ppl.bytes());
    out.printf("windows          seq-len %d, stride %d%n", seqLen, stride);
    out.printf("tokens           %d%n", ppl.tokens());
    out.printf("perplexity       %.4f%n", ppl.perplexity());
    out.printf("bits per byte    %.4f%n", ppl.bitsPerByte());
    out.printf("tokens/s         %.1f%n", ppl.tokensPerSecond());
    if (div != null) {
      out.printf("baseline ppl     %.4f%n", div.baselinePerplexity());
      out.printf("KL divergence    %.6f nats/token (max %.4f)%n", div.klDivergence(), div.klMax());
      out.printf("top-1 agreement  %.2f%%%n", 100 * div.top1Agreement());
    }
    if (memory.peakRssBytes() > 0) {
      out.printf("peak RSS         %.1f MiB%n", memory.peakRssBytes() / 1048576.0);
    }
  }
}
