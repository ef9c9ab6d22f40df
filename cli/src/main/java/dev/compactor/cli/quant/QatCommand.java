package dev.compactor.cli.quant;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.qat.QatRun;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import dev.compactor.core.quant.table.GgufToHf;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.QualityTable;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code compactor qat}: quantization-aware training. Quantizes the decoder linears with RTN or
 * GPTQ (symmetric, 2/3/4/8 bits), then trains the latent weights and LSQ steps through fake
 * quantization against the original model (KL + CE on the calibration text), and writes the learned
 * integer grid: always {@code dequantized/} (the exact fake-quantized weights, any tool loads
 * them), plus {@code compressed-tensors/} (the codes and learned steps as they are) or a GGUF file
 * (re-quantized by ggml's Q4_0/Q8_0 rule from the dequantized weights) when asked, 4 and 8 bits
 * only. Prints KL divergence and perplexity against the original on held-out text before (the init)
 * and after; {@code --compare} adds the RTN and GPTQ rows at the same grid.
 */
public final class QatCommand implements Command {

  static final int TRAIN_WINDOWS = 512;
  static final int DEFAULT_SEQ = 128;
  private static final int DEFAULT_MAX_BYTES = 100_000;
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  @Override
  public String name() {
    return "qat";
  }

  @Override
  public String summary() {
    return "quantization-aware training (LSQ fake quantization from RTN or GPTQ) and its export";
  }

  @Override
  public String usage() {
    return "--model DIR --bits 2|3|4|8 [--group-size -1|32|64|128] [--init rtn|gptq|best]"
        + " [--steps N] [--lr F] [--batch N] [--seq N] [--alpha F] [--calibration FILE]"
        + " [--text FILE] [--max-bytes N] [--format dequantized|compressed-tensors|gguf]"
        + " [--compare] --out DIR [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model",
                "bits",
                "group-size",
                "init",
                "steps",
                "lr",
                "batch",
                "seq",
                "alpha",
                "calibration",
                "text",
                "max-bytes",
                "format",
                "out"),
            Set.of("compare", "json"));
    Path model = args.requiredPath("model");
    Path outDir = args.requiredPath("out");
    int bits = args.integer("bits", 0);
    if (!args.present("bits")) {
      throw new UsageException("missing required option --bits (2, 3, 4 or 8)");
    }
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
      throw new UsageException("--bits must be 2, 3, 4 or 8, found " + bits);
    }
    ModelConfig config = ModelConfig.read(model);
    int group = args.integer("group-size", QualityTable.largestGroup(config));
    if (group == -1 || group == 0) {
      group = 0;
    }
    String init = args.string("init", "rtn");
    if (!Set.of("rtn", "gptq", "best").contains(init)) {
      throw new UsageException("--init must be rtn, gptq or best, found '" + init + "'");
    }
    String format = args.string("format", "dequantized");
    if (!Set.of("dequantized", "compressed-tensors", "gguf").contains(format)) {
      throw new UsageException(
          "--format must be dequantized, compressed-tensors or gguf, found '" + format + "'");
    }
    if (!format.equals("dequantized") && bits != 4 && bits != 8) {
      throw new UnsupportedOperationException(
          "not supported yet: "
              + bits
              + "-bit export to "
              + format
              + " (4 and 8 bits are); use --format dequantized to evaluate the fake-quantized"
              + " model");
    }
    int steps = args.integer("steps", 200);
    int batch = args.integer("batch", 4);
    int seq = Math.min(args.integer("seq", DEFAULT_SEQ), config.maxPositions() - 1);
    float lr = (float) args.number("lr", 1e-4);
    float alpha = (float) args.number("alpha", 0.9);
    WeightQuantization rtn;
    WeightQuantization gptq;
    try {
      rtn = new WeightQuantization(Method.RTN, bits, group, true);
      gptq = new WeightQuantization(Method.GPTQ, bits, group, true);
      rtn.checkFits(config.linearInputWidths());
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    DistillationSpec spec = QatRun.spec(steps, batch, lr, alpha);
    CalibrationText calibration =
        CalibrationText.file(
            args.present("calibration") ? Path.of(args.required("calibration")) : null);
    TableText held = TableText.fromArgs(args, args.integer("max-bytes", DEFAULT_MAX_BYTES));
    int evalSeq = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, config.maxPositions());
    Files.createDirectories(outDir);
    Path work = Files.createTempDirectory("compactor-qat");
    ObjectNode summary = JSON.createObjectNode();
    try (TextTokenizer tok = Tokenizers.forModel(model);
        Transformer base = Transformer.load(model, Device.cpu())) {
      int[] evalTokens = EvalText.of(tok, held.text()).tokens();
      List<int[]> gptqSamples =
          calibration
              .corpus()
              .calibrationSamples(tok, QuantizeCommand.SAMPLES, evalSeq, QuantizeCommand.SEED);
      List<int[]> train = calibration.corpus().calibrationSamples(tok, TRAIN_WINDOWS, seq + 1, 1);
      DivergenceEvaluator eval = new DivergenceEvaluator(evalSeq, evalSeq);
      Map<String, DivergenceResult> rows = new LinkedHashMap<>();
      if (args.has("compare") || init.equals("best")) {
        for (WeightQuantization q : List.of(rtn, gptq)) {
          Path dir = work.resolve(q.method().id());
          try (DequantizedCheckpointSink sink =
              new DequantizedCheckpointSink(model, dir, Map.of())) {
            LayerwiseQuantizer.Summary s =
                LayerwiseQuantizer.run(model, q, gptqSamples, sink, ProgressListener.NONE);
            sink.finish(DequantizedCheckpointSink.quantizationConfig(q, s), null);
          }
          rows.put(q.label(), score(eval, base, dir, evalTokens));
          err.printf("%s: KL %.6f%n", q.label(), rows.get(q.label()).klDivergence());
        }
        if (init.equals("best")) {
          init =
              rows.get(gptq.label()).klDivergence() < rows.get(rtn.label()).klDivergence()
                  ? "gptq"
                  : "rtn";
          err.println("init: " + init + " (the lower KL)");
        }
      }
      WeightQuantization start = init.equals("gptq") ? gptq : rtn;
      long t0 = System.nanoTime();
      Path dequantized = outDir.resolve("dequantized");
      LlamaFileType ggufType = format.equals("gguf") ? QatRun.ggufType(bits) : null;
      QatRun.Request request =
          new QatRun.Request(
              model,
              start,
              gptqSamples,
              train,
              spec,
              new QatRun.Outputs(
                  dequantized,
                  format.equals("compressed-tensors") ? outDir.resolve("compressed-tensors") : null,
                  ggufType,
                  outDir));
      DivergenceResult[] before = new DivergenceResult[1];
      QatRun.Listener listener =
          new QatRun.Listener() {
            @Override
            public void initWritten(Path initDir) throws IOException {
              // the --compare row of the init is the same checkpoint: scored once
              before[0] =
                  rows.containsKey(start.label())
                      ? rows.get(start.label())
                      : score(eval, base, initDir, evalTokens);
              err.printf("before (%s): KL %.6f%n", start.label(), before[0].klDivergence());
            }

            @Override
            public void step(long step, long totalSteps, double loss) {}
          };
      QatRun.Result result =
          QatRun.run(
              request,
              base,
              report -> {
                ObjectNode extra = JSON.createObjectNode();
                try {
                  extra.set(
                      "compactor", provenance(argv, model, calibration, start, spec, seq, report));
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
                return extra;
              },
              work.resolve("qat"),
              new LocalCheckpointSink(work.resolve("ckpt"), 1),
              listener);
      DistillationReport report = result.report();
      double exactBlocks = result.ggmlExactBlocks();
      DivergenceResult after = score(eval, base, dequantized, evalTokens);
      double seconds = (System.nanoTime() - t0) / 1e9;
      rows.put(
          "qat "
              + start.label().replace(start.method().id() + " ", "")
              + " from "
              + start.method().id(),
          after);
      String ggufNote = null;
      if (ggufType != null) {
        LlamaFileType type = ggufType;
        Path file = result.ggufFile();
        Path back = work.resolve("gguf-hf");
        GgufToHf.convert(file, model, back);
        DivergenceResult g = score(eval, base, back, evalTokens);
        rows.put("qat -> GGUF " + type.name(), g);
        ggufNote =
            "re-quantized by ggml's "
                + type.name()
                + " rule from the dequantized QAT weights: "
                + String.format(Locale.ROOT, "%.1f", 100 * exactBlocks)
                + "% of the 32-value blocks keep the learned grid (up to the fp16 step), the"
                + " rest are re-quantized on ggml's grid";
      }
      summary.put("out", outDir.toAbsolutePath().toString());
      summary.put("bits", bits);
      summary.put("group_size", group == 0 ? -1 : group);
      summary.put("init", start.method().id());
      summary.put("steps", steps);
      summary.put("lr", lr);
      summary.put("batch", batch);
      summary.put("seq", seq);
      summary.put("alpha", alpha);
      summary.put("train_seconds", seconds);
      summary.put("loss_first", report.startLoss());
      summary.put("loss_last", report.endLoss());
      summary.put("kl_before", before[0].klDivergence());
      summary.put("kl_after", after.klDivergence());
      summary.put("ppl_baseline", before[0].baselinePerplexity());
      summary.put("ppl_before", before[0].modelPerplexity());
      summary.put("ppl_after", after.modelPerplexity());
      if (ggufNote != null) {
        summary.put("gguf", ggufNote);
      }
      ArrayNode table = summary.putArray("rows");
      rows.forEach(
          (name, r) ->
              table
                  .addObject()
                  .put("method", name)
                  .put("klDivergence", r.klDivergence())
                  .put("perplexity", r.modelPerplexity())
                  .put("top1Agreement", r.top1Agreement()));
      ObjectNode provenance = provenance(argv, model, calibration, start, spec, seq, report);
      provenance.set("result", summary.deepCopy());
      Files.writeString(
          outDir.resolve(QuantizeCommand.PROVENANCE_FILE), JSON.writeValueAsString(provenance));
      if (args.has("json")) {
        out.println(new ObjectMapper().writeValueAsString(summary));
      } else {
        out.printf(
            Locale.ROOT,
            "qat %s from %s: %d steps (batch %d x %d tokens, lr %s, alpha %s) in %.0f s, loss"
                + " %.4f -> %.4f%n",
            start.label().replace(start.method().id() + " ", ""),
            start.method().id(),
            steps,
            batch,
            seq,
            lr,
            alpha,
            seconds,
            report.startLoss(),
            report.endLoss());
        out.printf(
            Locale.ROOT,
            "KL %.6f -> %.6f, ppl %.4f -> %.4f (original %.4f), text: %s, %d tokens%n",
            before[0].klDivergence(),
            after.klDivergence(),
            before[0].modelPerplexity(),
            after.modelPerplexity(),
            before[0].baselinePerplexity(),
            held.name(),
            evalTokens.length);
        out.printf(Locale.ROOT, "%-28s %10s %10s %7s%n", "method", "KL", "ppl", "top1%");
        rows.forEach(
            (name, r) ->
                out.printf(
                    Locale.ROOT,
                    "%-28s %10.6f %10.4f %7.2f%n",
                    name,
                    r.klDivergence(),
                    r.modelPerplexity(),
                    100 * r.top1Agreement()));
        if (ggufNote != null) {
          out.println("gguf: " + ggufNote);
        }
        out.println("wrote " + outDir);
      }
    } finally {
      TableText.deleteRecursively(work);
    }
    return 0;
  }

  private static DivergenceResult score(
      DivergenceEvaluator eval, Transformer base, Path dir, int[] tokens) throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      return eval.evaluate(base, m, tokens, ProgressListener.NONE);
    }
  }

  private static ObjectNode provenance(
      String[] argv,
      Path model,
      CalibrationText calibration,
      WeightQuantization start,
      DistillationSpec spec,
      int seq,
      DistillationReport report)
      throws IOException {
    ObjectNode p = JSON.createObjectNode();
    p.put("tool", "compactor qat");
    ArrayNode cmd = p.putArray("command_line");
    cmd.add("qat");
    for (String a : argv) {
      cmd.add(a);
    }
    p.put("created", Instant.now().toString());
    p.put("input_dir", model.toAbsolutePath().toString());
    ObjectNode inputs = p.putObject("input_sha256");
    ModelDirectory.open(model).sha256Files().forEach(inputs::put);
    p.put("calibration_source", calibration.source());
    p.put("calibration_sha256", calibration.sha256());
    ObjectNode q = p.putObject("qat");
    q.put("method", "lsq fake quantization, straight-through estimator");
    q.put("init", start.method().id());
    q.put("bits", start.bits());
    q.put("group_size", start.groupSize() == 0 ? -1 : start.groupSize());
    q.put("symmetric", true);
    q.put("steps", spec.steps());
    q.put("batch", spec.batchSize());
    q.put("seq", seq);
    q.put("lr", spec.learningRate());
    q.put("temperature", spec.temperature());
    q.put("alpha", spec.alpha());
    q.put("trained_tokens", report.tokens());
    q.put("evaluation_only", start.bits() != 4 && start.bits() != 8);
    q.put(
        "dequantized",
        start.bits() == 4 || start.bits() == 8
            ? "dequantized/ holds the learned grid dequantized (exact fake-quant weights)"
            : "dequantized/ holds the fake-quantized "
                + start.bits()
                + "-bit weights dequantized, for evaluation only: no exporter writes "
                + start.bits()
                + "-bit grids yet");
    return p;
  }
}
