package dev.compactor.cli.quant;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.cli.UsageException;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.codebook.CodebookTable;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor codebook-table}: codebook quantization (4 and 3 bits; uniform, Hessian and
 * Fisher sensitivities; exact and Lloyd k-means) against RTN and GPTQ int4 and RTN int3 at equal
 * bits on one model (the tiny reference model by default), scored on held-out text against the
 * unquantized model like {@code quality-table}. Calibration: the bundled Europarl training split.
 */
public final class CodebookTableCommand implements Command {

  private static final int DEFAULT_MAX_BYTES = 100_000;

  @Override
  public String name() {
    return "codebook-table";
  }

  @Override
  public String summary() {
    return "codebook (SqueezeLLM-style) quantization versus RTN/GPTQ at equal bits";
  }

  @Override
  public String usage() {
    return "[--model DIR (default: tiny reference model)] [--text FILE] [--max-bytes N]"
        + " [--samples N] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("model", "text", "max-bytes", "samples"), Set.of("json"));
    int maxBytes = args.integer("max-bytes", DEFAULT_MAX_BYTES);
    if (maxBytes < 1000) {
      throw new UsageException("--max-bytes must be at least 1000, found " + maxBytes);
    }
    int samplesWanted = args.integer("samples", QuantizeCommand.SAMPLES);
    if (samplesWanted < 1) {
      throw new UsageException("--samples must be >= 1, found " + samplesWanted);
    }
    Path model =
        args.present("model") ? Path.of(args.required("model")) : TinyReferenceModel.shipped();
    TableText held = TableText.fromArgs(args, maxBytes);
    ModelConfig config = ModelConfig.read(model);
    int seqLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, config.maxPositions());
    Path work = Files.createTempDirectory("compactor-codebook-table");
    try (TextTokenizer tok = Tokenizers.forModel(model)) {
      int[] tokens = EvalText.of(tok, held.text()).tokens();
      List<int[]> samples =
          CalibrationText.builtin()
              .corpus()
              .calibrationSamples(tok, samplesWanted, seqLen, QuantizeCommand.SEED);
      CodebookTable table = new CodebookTable(model, work, tokens, samples, seqLen);
      long t0 = System.nanoTime();
      List<CodebookTable.Row> rows =
          table.run(
              (phase, done, total) -> err.printf("%s: %d/%d rows%n", phase, done, total),
              r ->
                  err.printf(
                      Locale.ROOT,
                      "row: %s ppl %.4f KL %.6f top1 %.2f%% bytes %d bpw %.3f%n",
                      r.name(),
                      r.result().modelPerplexity(),
                      r.result().klDivergence(),
                      100 * r.result().top1Agreement(),
                      r.bytes(),
                      r.bitsPerWeight()));
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (args.has("json")) {
        ObjectNode root = TableText.jsonHeader(model, held.name(), tokens.length, seqLen);
        root.put("groupSize", table.groupSize());
        root.put("calibrationSamples", samples.size());
        ArrayNode a = root.putArray("rows");
        for (CodebookTable.Row r : rows) {
          a.addObject()
              .put("format", r.name())
              .put("perplexity", r.result().modelPerplexity())
              .put("deltaPplPercent", r.deltaPplPercent())
              .put("klDivergence", r.result().klDivergence())
              .put("top1Agreement", r.result().top1Agreement())
              .put("bytes", r.bytes())
              .put("bitsPerWeight", r.bitsPerWeight())
              .put("seconds", r.seconds());
        }
        out.println(root);
      } else {
        out.printf("model: %s (%s)%n", model, TableText.weightsHash(model));
        out.printf(
            "text: %s, %d tokens, windows of %d; calibration (GPTQ, hessian, fisher): %d windows"
                + " of the Europarl training split%n",
            held.name(), tokens.length, seqLen, samples.size());
        out.printf(
            Locale.ROOT,
            "%-34s %10s %8s %10s %7s %12s %7s %8s%n",
            "format",
            "ppl",
            "dPPL%",
            "KL",
            "top1%",
            "bytes",
            "bpw",
            "quant s");
        for (CodebookTable.Row r : rows) {
          out.printf(
              Locale.ROOT,
              "%-34s %10.4f %+8.3f %10.6f %7.2f %,12d %7.3f %8.1f%n",
              r.name(),
              r.result().modelPerplexity(),
              r.deltaPplPercent(),
              r.result().klDivergence(),
              100 * r.result().top1Agreement(),
              r.bytes(),
              r.bitsPerWeight(),
              r.seconds());
        }
        out.printf(
            "bytes: all tensors as stored (codebook rows: the safetensors files written; uniform"
                + " rows: packed codes + F16 scales + zero points). bpw: stored bits per"
                + " decoder-linear weight incl. scales or codebooks (a codebook row costs 2^bits"
                + " F16 values, so narrow rows pay more). Codebook checkpoints load in Compactor"
                + " only. %.0f s.%n",
            seconds);
      }
    } finally {
      TableText.deleteRecursively(work);
    }
    return 0;
  }
}
