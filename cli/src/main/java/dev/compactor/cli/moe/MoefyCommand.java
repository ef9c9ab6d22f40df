package dev.compactor.cli.moe;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.moe.MoeFlops;
import dev.compactor.core.moe.Moefier;
import dev.compactor.core.moe.RouterTrainer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code compactor moefy}: MoEfication of a dense Llama-family model. Splits every MLP into E equal
 * experts (balanced k-means on the neurons' activation patterns over the bundled Europarl training
 * split), trains a linear router per layer and k, and writes one model per k: a valid dense
 * checkpoint (Hugging Face runs it as the dense model) whose {@code compactor_moefication} config
 * field makes Compactor run only the top-k expert slices per token. With {@code --table} it also
 * scores each k against the dense model on held-out text.
 */
public final class MoefyCommand implements Command {

  private static final int DEFAULT_SAMPLES = 64;
  private static final int HELD_OUT_WINDOWS = 8;
  private static final int DEFAULT_MAX_BYTES = 30_000;

  @Override
  public String name() {
    return "moefy";
  }

  @Override
  public String summary() {
    return "split each dense MLP into routed experts (MoEfication) and report FLOPs and quality";
  }

  @Override
  public String usage() {
    return "--experts E --k K[,K2,...] --out DIR [--model DIR (default: tiny reference model)]"
        + " [--samples N] [--seed S] [--table [--text FILE] [--max-bytes N]] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model",
                "experts",
                "k",
                "out",
                "samples",
                "seed",
                "text",
                "max-bytes",
                "clustering"),
            Set.of("json", "table"));
    Path model =
        args.present("model") ? Path.of(args.required("model")) : TinyReferenceModel.shipped();
    int experts = args.integer("experts", 0);
    if (experts < 1) {
      throw new UsageException("--experts: expected a positive number of experts");
    }
    int[] ks = parseKs(args.required("k"), experts);
    Path outDir = args.requiredPath("out");
    int samples = args.integer("samples", DEFAULT_SAMPLES);
    long seed = args.longValue("seed", 0);
    int maxBytes = args.integer("max-bytes", DEFAULT_MAX_BYTES);
    Moefier.Clustering clustering;
    String clusteringName = args.string("clustering", "activations");
    try {
      clustering = Moefier.Clustering.valueOf(clusteringName.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException ex) {
      throw new UsageException(
          "--clustering: expected activations, weights or random, found " + clusteringName);
    }
    ModelConfig config = ModelConfig.read(model);
    if (config.intermediateSize() % experts != 0) {
      throw new UsageException(
          "--experts "
              + experts
              + " must divide the intermediate size "
              + config.intermediateSize());
    }
    for (int k : ks) {
      Moefier.moefiedConfig(config, experts, k); // refuses unsupported models before any work
    }
    int seqLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, config.maxPositions());
    long t0 = System.nanoTime();
    List<Row> rows = new ArrayList<>();
    Moefier.Plan plan;
    int evalTokens = 0;
    try (TextTokenizer tok = Tokenizers.forModel(model);
        Transformer dense = Transformer.load(model, Device.cpu())) {
      Corpus corpus = CalibrationText.builtin().corpus();
      List<int[]> train = corpus.calibrationSamples(tok, samples, seqLen, seed);
      List<int[]> heldOut = windows(tok.encode(corpus.validationText()), seqLen, HELD_OUT_WINDOWS);
      Moefier.Settings settings =
          new Moefier.Settings(
              clustering,
              experts,
              ks,
              Moefier.DEFAULT_CLUSTER_TOKENS,
              Moefier.DEFAULT_KMEANS_ITERATIONS,
              RouterTrainer.Settings.defaults(seed),
              seed);
      plan =
          Moefier.plan(
              dense,
              train,
              heldOut,
              settings,
              (phase, done, total) -> err.printf("%s: %d/%d layers%n", phase, done, total));
      DType storeAs = Moefier.storage(config);
      for (int k : ks) {
        Path dir = ks.length == 1 ? outDir : outDir.resolve("k" + k);
        Moefier.write(dense, plan, k, dir, storeAs, Map.of("format", "pt"));
        ModelDirectory.copyAuxiliaryFiles(model, dir);
        err.printf("wrote %s (k = %d of %d experts)%n", dir, k, experts);
      }
      if (args.has("table")) {
        String text =
            args.present("text")
                ? Files.readString(Path.of(args.required("text")), StandardCharsets.UTF_8)
                : corpus.testText();
        int[] tokens = EvalText.of(tok, TableText.truncate(text, maxBytes)).tokens();
        evalTokens = tokens.length;
        DivergenceEvaluator eval = new DivergenceEvaluator(seqLen, seqLen);
        // every k is scored against the dense model on the same windows: its logits once
        try (MemoizedLogits denseLogits = MemoizedLogits.of(dense)) {
          for (int k : ks) {
            Path dir = ks.length == 1 ? outDir : outDir.resolve("k" + k);
            try (Transformer moefied = Transformer.load(dir, Device.cpu())) {
              DivergenceResult r =
                  eval.evaluate(
                      denseLogits,
                      moefied,
                      tokens,
                      (phase, done, total) ->
                          err.printf("k=%d %s: %d/%d%n", k, phase, done, total));
              rows.add(new Row(k, r, plan.meanRecall(k)));
            }
          }
        }
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (args.has("json")) {
      out.println(json(model, config, clustering, plan, ks, rows, evalTokens, seqLen));
    } else {
      print(out, model, config, clustering, plan, ks, rows, evalTokens, seqLen, seconds);
    }
    return 0;
  }

  /** One k's figures against the dense model. */
  private record Row(int k, DivergenceResult result, double recall) {}

  private static void print(
      PrintStream out,
      Path model,
      ModelConfig c,
      Moefier.Clustering clustering,
      Moefier.Plan plan,
      int[] ks,
      List<Row> rows,
      int evalTokens,
      int seqLen,
      double seconds) {
    int e = plan.experts();
    out.printf(
        "model: %s (%s)%nsplit: %d layers, MLP %d -> %d experts of %d neurons%n",
        model,
        TableText.weightsHash(model),
        c.numLayers(),
        c.intermediateSize(),
        e,
        c.intermediateSize() / e);
    out.printf(
        "clustering: %s; calibration: %d tokens of the Europarl training split (clusters,"
            + " routers); router recall on %d tokens of the validation split%n",
        clustering.name().toLowerCase(Locale.ROOT), plan.trainTokens(), plan.heldOutTokens());
    long denseMlp = MoeFlops.denseMlp(c) * c.numLayers();
    long denseTotal = MoeFlops.total(c, MoeFlops.denseMlp(c));
    if (rows.isEmpty()) {
      out.printf(
          Locale.ROOT,
          "%4s %14s %8s %14s %9s%n",
          "k",
          "MLP FLOP/tok",
          "MLP %",
          "FLOP/tok",
          "recall");
      for (int k : ks) {
        long mlp = MoeFlops.moefiedMlp(c, e, k) * c.numLayers();
        out.printf(
            Locale.ROOT,
            "%4d %,14d %8.1f %,14d %9.4f%n",
            k,
            mlp,
            100.0 * mlp / denseMlp,
            MoeFlops.total(c, MoeFlops.moefiedMlp(c, e, k)),
            plan.meanRecall(k));
      }
      return;
    }
    out.printf(
        "text: Europarl English test split (or --text), %d tokens, windows of %d%n",
        evalTokens, seqLen);
    out.printf(
        Locale.ROOT,
        "%-10s %10s %8s %10s %7s %14s %7s %14s %7s %8s %8s%n",
        "model",
        "ppl",
        "dPPL%",
        "KL",
        "top1%",
        "MLP FLOP/tok",
        "MLP%",
        "FLOP/tok",
        "recall",
        "mass-rtr",
        "mass-best");
    double basePpl = rows.get(0).result().baselinePerplexity();
    out.printf(
        Locale.ROOT,
        "%-10s %10.4f %+8.3f %10.6f %7.2f %,14d %7.1f %,14d %7s %8s %8s%n",
        "dense",
        basePpl,
        0.0,
        0.0,
        100.0,
        denseMlp,
        100.0,
        denseTotal,
        "-",
        "-",
        "-");
    for (Row r : rows) {
      long mlp = MoeFlops.moefiedMlp(c, e, r.k()) * c.numLayers();
      out.printf(
          Locale.ROOT,
          "%-10s %10.4f %+8.3f %10.6f %7.2f %,14d %7.1f %,14d %7.4f %8.4f %8.4f%n",
          "k=" + r.k() + "/" + e,
          r.result().modelPerplexity(),
          100 * (r.result().modelPerplexity() / basePpl - 1),
          r.result().klDivergence(),
          100 * r.result().top1Agreement(),
          mlp,
          100.0 * mlp / denseMlp,
          MoeFlops.total(c, MoeFlops.moefiedMlp(c, e, r.k())),
          r.recall(),
          plan.meanRoutedMass(r.k()),
          plan.meanOracleMass(r.k()));
    }
    out.printf(
        "FLOP/tok: 2 per weight multiply-add of the decoder linears, router and LM head; attention"
            + " scores and values (context-dependent, unchanged) left out. MLP%%: of the dense MLPs."
            + " recall: share of a held-out token's k heaviest experts (sum |a|) its router picks;"
            + " mass-rtr / mass-best: share of the token's sum |a| in the router's k experts / in its k heaviest;"
            + " both mean over layers. Expert outputs are summed unweighted. %.0f s.%n",
        seconds);
  }

  private static String json(
      Path model,
      ModelConfig c,
      Moefier.Clustering clustering,
      Moefier.Plan plan,
      int[] ks,
      List<Row> rows,
      int evalTokens,
      int seqLen) {
    ObjectMapper m = new ObjectMapper();
    ObjectNode root = m.createObjectNode();
    int e = plan.experts();
    root.put("model", model.toString());
    root.put("weights", TableText.weightsHash(model));
    root.put("experts", e);
    root.put("clustering", clustering.name().toLowerCase(Locale.ROOT));
    root.put("trainTokens", plan.trainTokens());
    root.put("heldOutTokens", plan.heldOutTokens());
    root.put("evalTokens", evalTokens);
    root.put("seqLen", seqLen);
    root.put("denseMlpFlopsPerToken", MoeFlops.denseMlp(c) * c.numLayers());
    root.put("denseFlopsPerToken", MoeFlops.total(c, MoeFlops.denseMlp(c)));
    ArrayNode a = root.putArray("rows");
    for (int k : ks) {
      ObjectNode row = a.addObject();
      row.put("k", k);
      row.put("mlpFlopsPerToken", MoeFlops.moefiedMlp(c, e, k) * c.numLayers());
      row.put("flopsPerToken", MoeFlops.total(c, MoeFlops.moefiedMlp(c, e, k)));
      row.put("routerRecall", plan.meanRecall(k));
      row.put("oracleMassShare", plan.meanOracleMass(k));
      row.put("routedMassShare", plan.meanRoutedMass(k));
      ArrayNode perLayer = row.putArray("routerRecallPerLayer");
      for (Moefier.LayerPlan l : plan.layers()) {
        perLayer.add(l.heldOutRecall().get(k));
      }
      for (Row r : rows) {
        if (r.k() == k) {
          row.put("perplexity", r.result().modelPerplexity());
          row.put("baselinePerplexity", r.result().baselinePerplexity());
          row.put("klDivergence", r.result().klDivergence());
          row.put("top1Agreement", r.result().top1Agreement());
        }
      }
    }
    return root.toString();
  }

  static int[] parseKs(String list, int experts) throws UsageException {
    try {
      int[] ks = Arrays.stream(list.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
      for (int k : ks) {
        if (k < 1 || k > experts) {
          throw new UsageException(
              "--k: expected values between 1 and " + experts + ", found " + k);
        }
      }
      if (Arrays.stream(ks).distinct().count() != ks.length) {
        throw new UsageException("--k: a value is given twice in " + list);
      }
      return ks;
    } catch (NumberFormatException ex) {
      throw new UsageException("--k: expected comma-separated integers, found " + list);
    }
  }

  /** Consecutive windows of {@code len} tokens from the start of {@code tokens}, at most max. */
  private static List<int[]> windows(int[] tokens, int len, int max) {
    List<int[]> out = new ArrayList<>();
    for (int at = 0; at + len <= tokens.length && out.size() < max; at += len) {
      out.add(Arrays.copyOfRange(tokens, at, at + len));
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          "the validation split has fewer than " + len + " tokens for held-out router recall");
    }
    return out;
  }
}
