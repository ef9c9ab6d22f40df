package dev.compactor.cli.quant;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.mixed.Allocation;
import dev.compactor.core.quant.mixed.MixedPrecision;
import dev.compactor.core.quant.mixed.QuantOption;
import dev.compactor.core.quant.mixed.Sensitivity;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code mixed-precision}: measures each decoder linear's sensitivity to every RTN option (KL with
 * only that linear quantized, on Europarl calibration windows), picks the plan of least summed
 * sensitivity within {@code --budget-bpw} bits per linear weight ({@link Allocation}), writes it
 * dequantized with its per-linear choices in {@code quantization_config}, and scores it and every
 * uniform option on held-out text.
 */
public final class MixedPrecisionCommand implements Command {

  static final String DEFAULT_OPTIONS = "int8,int4g128,int4g32,int2g32";
  static final int DEFAULT_EVAL_BYTES = 50_000;

  @Override
  public String name() {
    return "mixed-precision";
  }

  @Override
  public String summary() {
    return "per-linear RTN bit widths chosen from measured sensitivity under a size budget";
  }

  @Override
  public String usage() {
    return "--model DIR --budget-bpw F [--options "
        + DEFAULT_OPTIONS
        + "] [--windows N (8)]"
        + " [--seq-len N (128)] [--format dequantized] [--text FILE] [--max-bytes N] --out DIR"
        + " [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model",
                "budget-bpw",
                "options",
                "windows",
                "seq-len",
                "format",
                "text",
                "max-bytes",
                "out"),
            Set.of("json"));
    Path model = args.requiredPath("model");
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    Path outDir = args.requiredPath("out");
    if (Files.exists(outDir)) {
      try (var entries = Files.list(outDir)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + outDir + " must be absent or empty");
        }
      }
    }
    String format = args.string("format", "dequantized");
    if (!format.equals("dequantized")) {
      throw new UnsupportedOperationException(
          "not supported yet: --format " + format + " of a mixed plan (dequantized is)");
    }
    double bpw = args.number("budget-bpw", 0);
    if (!(bpw > 0)) {
      throw new UsageException("--budget-bpw: expected bits per linear weight > 0");
    }
    List<QuantOption> opts = new ArrayList<>();
    try {
      for (String s : args.string("options", DEFAULT_OPTIONS).split(",")) {
        opts.add(QuantOption.parse(s));
      }
    } catch (IllegalArgumentException | UnsupportedOperationException e) {
      throw new UsageException("--options: " + e.getMessage());
    }
    int windows = args.integer("windows", 8);
    int seqLen = Math.min(args.integer("seq-len", 128), ModelConfig.read(model).maxPositions());
    TableText held = TableText.fromArgs(args, args.integer("max-bytes", DEFAULT_EVAL_BYTES));

    long t0 = System.nanoTime();
    List<Sensitivity.Linear> linears;
    int[] heldTokens;
    Allocation.Plan plan;
    try (TextTokenizer tok = Tokenizers.forModel(model);
        Transformer base = Transformer.load(model, Device.cpu())) {
      List<int[]> calib = TableText.calibrationWindows(tok, windows, seqLen, 0);
      heldTokens = EvalText.of(tok, held.text()).tokens();
      err.printf(
          "measuring %d options on every linear, %d windows of %d tokens%n",
          opts.size(), windows, seqLen);
      linears = Sensitivity.measure(base, calib, opts);
      long budget = (long) Math.floor(bpw * MixedPrecision.params(linears) / 8);
      try {
        plan = Allocation.solve(linears.stream().map(Sensitivity.Linear::options).toList(), budget);
      } catch (IllegalArgumentException e) {
        throw new UsageException("--budget-bpw " + bpw + ": " + e.getMessage());
      }
      int evalLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, base.maxSequenceLength());
      DivergenceEvaluator eval = new DivergenceEvaluator(evalLen, evalLen);
      DivergenceResult mixed;
      try (Transformer m = Transformer.load(model, Device.cpu())) {
        MixedPrecision.apply(m, linears, plan.choice(), opts);
        MixedPrecision.write(
            model, m, MixedPrecision.quantizationConfig(linears, plan.choice(), opts), outDir);
        mixed = eval.evaluate(base, m, heldTokens, ProgressListener.NONE);
      }
      List<DivergenceResult> uniform = new ArrayList<>();
      for (int o = 0; o < opts.size(); o++) {
        int[] all = new int[linears.size()];
        Arrays.fill(all, o);
        try (Transformer u = Transformer.load(model, Device.cpu())) {
          MixedPrecision.apply(u, linears, all, opts);
          uniform.add(eval.evaluate(base, u, heldTokens, ProgressListener.NONE));
        }
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (args.has("json")) {
        out.println(json(model, held, heldTokens.length, bpw, linears, plan, opts, mixed, uniform));
      } else {
        print(out, held, heldTokens.length, bpw, linears, plan, opts, mixed, uniform, seconds);
      }
    }
    return 0;
  }

  private static double bpw(List<Sensitivity.Linear> linears, long bytes) {
    return 8.0 * bytes / MixedPrecision.params(linears);
  }

  private static void print(
      PrintStream out,
      TableText held,
      int tokens,
      double budget,
      List<Sensitivity.Linear> linears,
      Allocation.Plan plan,
      List<QuantOption> opts,
      DivergenceResult mixed,
      List<DivergenceResult> uniform,
      double seconds) {
    out.printf(Locale.ROOT, "%-40s %-9s %9s %12s%n", "linear", "option", "bytes", "sensitivity");
    for (int i = 0; i < linears.size(); i++) {
      Allocation.Option o = linears.get(i).options().get(plan.choice()[i]);
      out.printf(
          Locale.ROOT,
          "%-40s %-9s %9d %12.3e%n",
          linears.get(i).fullName(),
          o.name(),
          o.bytes(),
          o.sensitivity());
    }
    out.printf(
        Locale.ROOT,
        "plan: %d bytes = %.3f bpw (budget %.3f), summed sensitivity %.4e%n",
        plan.bytes(),
        bpw(linears, plan.bytes()),
        budget,
        plan.sensitivity());
    out.printf(Locale.ROOT, "held-out %s (%d tokens), KL vs fp32:%n", held.name(), tokens);
    out.printf(
        Locale.ROOT,
        "  %-14s %6.3f bpw  KL %.6f  top-1 %.2f%%%n",
        "mixed",
        bpw(linears, plan.bytes()),
        mixed.klDivergence(),
        100 * mixed.top1Agreement());
    for (int o = 0; o < opts.size(); o++) {
      int[] all = new int[linears.size()];
      Arrays.fill(all, o);
      out.printf(
          Locale.ROOT,
          "  uniform %-6s %6.3f bpw  KL %.6f  top-1 %.2f%%%n",
          opts.get(o).id(),
          bpw(linears, MixedPrecision.bytes(linears, all)),
          uniform.get(o).klDivergence(),
          100 * uniform.get(o).top1Agreement());
    }
    out.printf(Locale.ROOT, "took %.1f s%n", seconds);
  }

  private static String json(
      Path model,
      TableText held,
      int tokens,
      double budget,
      List<Sensitivity.Linear> linears,
      Allocation.Plan plan,
      List<QuantOption> opts,
      DivergenceResult mixed,
      List<DivergenceResult> uniform) {
    ObjectNode root = new ObjectMapper().createObjectNode();
    root.put("model", model.toString());
    root.put("text", held.name());
    root.put("tokens", tokens);
    root.put("budget_bpw", budget);
    root.put("bytes", plan.bytes());
    root.put("bpw", bpw(linears, plan.bytes()));
    root.put("summed_sensitivity", plan.sensitivity());
    root.put("kl_divergence", mixed.klDivergence());
    root.set(
        "plan",
        MixedPrecision.quantizationConfig(linears, plan.choice(), opts)
            .get(MixedPrecision.BLOCK)
            .get("linears"));
    ArrayNode u = root.putArray("uniform");
    for (int o = 0; o < opts.size(); o++) {
      int[] all = new int[linears.size()];
      Arrays.fill(all, o);
      u.addObject()
          .put("option", opts.get(o).id())
          .put("bpw", bpw(linears, MixedPrecision.bytes(linears, all)))
          .put("kl_divergence", uniform.get(o).klDivergence());
    }
    return root.toString();
  }
}
