package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.cascade.CacheFigures;
import dev.compactor.core.cascade.CascadeStudy;
import dev.compactor.core.cascade.ConfidenceSignal;
import dev.compactor.core.cascade.Granularity;
import dev.compactor.core.cascade.GreedyCascade;
import dev.compactor.core.cascade.ModelFlops;
import dev.compactor.core.cascade.RoutingCurve;
import dev.compactor.core.cascade.RoutingPolicy;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Generation;
import dev.compactor.core.model.GenerationSettings;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tasks.BuiltinTasks;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tasks.TaskFile;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor cascade}: the routing curve of a two-model cascade (a small, compressed model
 * answering first, the large baseline when the small model is unsure), the threshold that meets a
 * quality target at the lowest cost, and a response cache's hit rate on Zipf query logs; see {@code
 * cli/docs/cascade.md}.
 */
final class CascadeCommand implements Command {

  static final int DEFAULT_SEQ_LEN = 128;
  static final int DEFAULT_WINDOWS = 48;
  static final int DEFAULT_LIMIT = 200;
  static final double DEFAULT_TARGET = 0.99;

  @Override
  public String name() {
    return "cascade";
  }

  @Override
  public String summary() {
    return "routing curve of a small/large model cascade, the threshold for a quality target, cache"
        + " hit rate";
  }

  @Override
  public String usage() {
    return "--small DIR --large DIR [--signal maxprob|margin|entropy] [--granularity request|token]"
        + " [--target 0.99] [--thresholds T1,T2,...] [--task text|"
        + String.join("|", BuiltinTasks.NAMES)
        + "|FILE.jsonl (text)] [--requests next-token|window (next-token)] [--seq-len N (128)] [--windows N (48)] [--text FILE] [--limit N"
        + " (200)] [--generate N] [--policy FILE.json] [--plot FILE.svg] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "small",
                "large",
                "signal",
                "granularity",
                "target",
                "thresholds",
                "task",
                "seq-len",
                "windows",
                "text",
                "max-bytes",
                "limit",
                "generate",
                "policy",
                "requests",
                "plot"),
            Set.of("json"));
    Path smallDir = args.requiredPath("small");
    Path largeDir = args.requiredPath("large");
    ConfidenceSignal signal;
    Granularity granularity;
    try {
      signal = ConfidenceSignal.of(args.string("signal", "maxprob"));
      granularity = Granularity.of(args.string("granularity", "request"));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    double target = args.number("target", DEFAULT_TARGET);
    if (!(target > 0)) {
      throw new UsageException("--target must be > 0, found " + target);
    }
    double[] thresholds = null;
    if (args.present("thresholds")) {
      try {
        thresholds =
            Arrays.stream(args.required("thresholds").split(","))
                .mapToDouble(x -> Double.parseDouble(x.strip()))
                .toArray();
      } catch (NumberFormatException e) {
        throw new UsageException("--thresholds expects numbers separated by commas");
      }
    }
    String task = args.string("task", "text");
    if (!task.equals("text") && granularity == Granularity.TOKEN) {
      throw new UsageException(
          "not supported: --granularity token with --task "
              + task
              + " (per-token routing is"
              + " measured on text windows: --task text)");
    }
    CascadeStudy.TextRequests requests;
    try {
      requests = CascadeStudy.TextRequests.of(args.string("requests", "next-token"));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    requireOneTokenizer(smallDir, largeDir);
    CascadeStudy.Settings settings =
        new CascadeStudy.Settings(signal, granularity, target, thresholds);
    ModelFlops fs = ModelFlops.of(ModelConfig.read(smallDir));
    ModelFlops fl = ModelFlops.of(ModelConfig.read(largeDir));
    ProgressPrinter progress = new ProgressPrinter(err);
    CascadeStudy study;
    ObjectNode generation = null;
    long t0 = System.nanoTime();
    try (TextTokenizer tokenizer = Tokenizers.forModel(largeDir);
        CausalLM small = ModelLoading.resident(smallDir);
        CausalLM large = ModelLoading.resident(largeDir)) {
      if (task.equals("text")) {
        TableText text = TableText.fromArgs(args, args.integer("max-bytes", 200_000));
        int[] tokens =
            tokenizer.bosId().isPresent()
                ? tokenizer.encodeWithBos(text.text())
                : tokenizer.encode(text.text());
        study =
            CascadeStudy.onText(
                small,
                large,
                fs,
                fl,
                tokenizer,
                tokens,
                args.integer("seq-len", DEFAULT_SEQ_LEN),
                args.integer("windows", DEFAULT_WINDOWS),
                text.name(),
                requests,
                settings,
                progress);
        int gen = args.integer("generate", 0);
        if (gen > 0) {
          generation = generate(small, large, fs, fl, tokens, gen, study);
        }
      } else {
        List<TaskDoc> docs = docs(task, args.integer("limit", DEFAULT_LIMIT));
        study =
            CascadeStudy.onTask(small, large, fs, fl, tokenizer, task, docs, settings, progress);
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = study.toJson();
    root.put("small", smallDir.toString()).put("large", largeDir.toString());
    root.put("small_flops_per_token", fs.linear()).put("large_flops_per_token", fl.linear());
    if (generation != null) {
      root.set("generation", generation);
    }
    root.put("seconds", seconds);
    if (args.present("policy")) {
      if (study.policy().isEmpty()) {
        err.println("no threshold meets the target " + target + ": no policy written");
      } else {
        ObjectNode p = study.policy().get().toJson();
        p.put("small", smallDir.toString()).put("large", largeDir.toString());
        Files.writeString(
            Path.of(args.required("policy")),
            json.writerWithDefaultPrettyPrinter().writeValueAsString(p));
      }
    }
    if (args.present("plot")) {
      Files.writeString(Path.of(args.required("plot")), CascadePlot.svg(study.curve(), target));
    }
    if (args.has("json")) {
      out.println(json.writerWithDefaultPrettyPrinter().writeValueAsString(root));
      return 0;
    }
    print(out, study, smallDir, largeDir, fs, fl);
    if (generation != null) {
      out.println();
      out.println("greedy generation (" + generation.get("measured_on").asText() + "):");
      out.printf(
          Locale.ROOT,
          "  small alone %.1f ms, large alone %.1f ms, cascade %.1f ms; cascade deferred %d of %d"
              + " tokens, the large model was fed %d positions in %d calls; FLOPs %.3f of the"
              + " large model's%n",
          generation.get("small_ms").asDouble(),
          generation.get("large_ms").asDouble(),
          generation.get("cascade_ms").asDouble(),
          generation.get("deferred").asInt(),
          generation.get("tokens").asInt(),
          generation.get("large_positions").asInt(),
          generation.get("large_calls").asInt(),
          generation.get("cost_fraction").asDouble());
    }
    out.printf(Locale.ROOT, "(%.1f s)%n", seconds);
    return 0;
  }

  private static void requireOneTokenizer(Path small, Path large) throws Exception {
    Path a = small.resolve("tokenizer.json");
    Path b = large.resolve("tokenizer.json");
    if (Files.isRegularFile(a) != Files.isRegularFile(b)
        || (Files.isRegularFile(a) && Files.mismatch(a, b) != -1)) {
      throw new UsageException(
          "a cascade needs one tokenizer: " + a + " and " + b + " differ (or one is missing)");
    }
  }

  private static List<TaskDoc> docs(String task, int limit) throws Exception {
    if (BuiltinTasks.NAMES.contains(task)) {
      return BuiltinTasks.build(task, limit, 0);
    }
    Path f = Path.of(task);
    if (!Files.isRegularFile(f)) {
      throw new UsageException(
          "--task: expected text, "
              + BuiltinTasks.NAMES
              + " or a JSONL file, found '"
              + task
              + "'");
    }
    List<TaskDoc> docs = TaskFile.read(f);
    return docs.subList(0, Math.min(limit, docs.size()));
  }

  /**
   * Greedy generation of {@code n} tokens after each of 4 prompts (the first 32 tokens of the first
   * 4 text windows) by the small model, the large model and the token cascade at the policy's
   * threshold (or the curve's middle one when no policy), wall time measured.
   */
  private static ObjectNode generate(
      CausalLM small,
      CausalLM large,
      ModelFlops fs,
      ModelFlops fl,
      int[] tokens,
      int n,
      CascadeStudy study) {
    List<RoutingCurve.Point> pts = study.curve().points();
    double threshold =
        study
            .policy()
            .map(RoutingPolicy::threshold)
            .filter(t -> t != null)
            .orElse(pts.get(pts.size() / 2).threshold());
    int prompts = 4;
    int promptLen = 32;
    long smallNs = 0;
    long largeNs = 0;
    long cascadeNs = 0;
    int deferred = 0;
    int produced = 0;
    int largePositions = 0;
    int largeCalls = 0;
    double cascadeFlops = 0;
    double largeFlops = 0;
    for (int p = 0; p < prompts; p++) {
      int at = Math.min(p * 128, tokens.length - promptLen);
      int[] prompt = Arrays.copyOfRange(tokens, at, at + promptLen);
      Generation.Timed st = Generation.generateTimed(small, prompt, n, GenerationSettings.greedy());
      smallNs += st.prefillNanos() + st.decodeNanos();
      Generation.Timed lt = Generation.generateTimed(large, prompt, n, GenerationSettings.greedy());
      largeNs += lt.prefillNanos() + lt.decodeNanos();
      GreedyCascade.Result r =
          GreedyCascade.generate(
              small, large, fs, fl, prompt, n, study.curve().signal(), threshold);
      cascadeNs += r.nanos();
      deferred += r.deferred();
      produced += r.tokens().length;
      largePositions += r.largePositions();
      largeCalls += r.largeCalls();
      cascadeFlops += r.smallFlops() + r.largeFlops();
      largeFlops += fl.span(0, promptLen + r.tokens().length - 1);
    }
    ObjectNode o = new ObjectMapper().createObjectNode();
    o.put(
        "measured_on",
        prompts
            + " prompts of "
            + promptLen
            + " tokens, "
            + n
            + " new tokens each, signal "
            + study.curve().signal().id()
            + " threshold "
            + String.format(Locale.ROOT, "%.4f", threshold));
    o.put("threshold", threshold)
        .put("tokens", produced)
        .put("deferred", deferred)
        .put("large_positions", largePositions)
        .put("large_calls", largeCalls)
        .put("small_ms", smallNs / 1e6)
        .put("large_ms", largeNs / 1e6)
        .put("cascade_ms", cascadeNs / 1e6)
        .put("cost_fraction", cascadeFlops / largeFlops);
    return o;
  }

  private static void print(
      PrintStream out, CascadeStudy s, Path smallDir, Path largeDir, ModelFlops fs, ModelFlops fl) {
    RoutingCurve c = s.curve();
    out.printf(
        Locale.ROOT,
        "cascade: small %s (%.2f MFLOP/token) -> large %s (%.2f MFLOP/token)%n",
        smallDir,
        fs.linear() / 1e6,
        largeDir,
        fl.linear() / 1e6);
    out.printf(
        "signal %s, granularity %s, on %s%n",
        c.signal().id(), c.granularity().id(), c.measuredOn());
    String q = c.metric().id();
    out.printf(
        Locale.ROOT,
        "%-12s %8s %10s %9s %9s %9s %12s %8s %10s%n",
        "threshold",
        "routed",
        "large-work",
        q,
        q + "/large",
        "random",
        "MFLOP/item",
        "cost",
        "ms/item");
    row(out, "small alone", c.smallAlone());
    for (RoutingCurve.Point p : c.points()) {
      row(out, String.format(Locale.ROOT, "%.6g", p.threshold()), p);
    }
    row(out, "large alone", c.largeAlone());
    out.println(
        "(routed: share answered by the large model; large-work: share of items the large model"
            + " processed, per token with its KV cache catching up to each deferred token; random:"
            + " expected quality of routing the same share at random; cost: FLOPs relative to the"
            + " large model alone)");
    if (s.policy().isPresent()) {
      RoutingPolicy p = s.policy().get();
      out.printf(
          Locale.ROOT,
          "policy for target %.3f: defer when %s; routed %.3f, %s %.4f (%.4f of large), cost %.3f%n",
          s.target(),
          p.toJson().get("defer_when").asText().replace("threshold", fmt(p.threshold())),
          p.point().fractionRouted(),
          q,
          p.point().quality(),
          p.point().qualityRatio(),
          p.point().costFraction());
    } else {
      out.printf(Locale.ROOT, "no threshold meets the target %.3f%n", s.target());
    }
    for (CacheFigures f : s.cache()) {
      out.printf(
          Locale.ROOT,
          "cache, Zipf %.1f log of %d queries over %d prompts: hit rate %.3f normalised, %.3f exact;"
              + " FLOPs saved %.3f%n",
          f.exponent(),
          f.exact().queries(),
          f.prompts(),
          f.normalised().hitRate(),
          f.exact().hitRate(),
          f.flopsSavedFraction());
    }
  }

  private static String fmt(Double t) {
    return t == null ? "-" : String.format(Locale.ROOT, "%.6g", t);
  }

  private static void row(PrintStream out, String label, RoutingCurve.Point p) {
    out.printf(
        Locale.ROOT,
        "%-12s %8.3f %10.3f %9.4f %9.4f %9.4f %12.3f %8.3f %10.3f%n",
        label,
        p.fractionRouted(),
        p.largeWorkFraction(),
        p.quality(),
        p.qualityRatio(),
        p.randomQuality(),
        p.flops() / 1e6,
        p.costFraction(),
        p.seconds() * 1e3);
  }
}
