package dev.compactor.cli.quant;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.Args;
import dev.compactor.cli.Command;
import dev.compactor.cli.TableText;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.table.QualityTable;
import dev.compactor.core.tiny.TinyReferenceModel;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor quality-table}: quantizes one model (the tiny reference model by default) in
 * every format — RTN int8/int4, GPTQ, AWQ, FP8, NF4, GGUF Q8_0/Q6_K/Q4_K_M/Q4_K_S/Q4_0 — and prints
 * how far each moved from the fp32 model on held-out text (perplexity, KL divergence, top-1
 * agreement) next to its stored size. GPTQ and AWQ calibrate on the bundled Europarl training
 * split; the default evaluation text is the disjoint test split.
 */
public final class QualityTableCommand implements Command {

  private static final int DEFAULT_MAX_BYTES = 100_000;

  @Override
  public String name() {
    return "quality-table";
  }

  @Override
  public String summary() {
    return "quality and size of every quantization format versus the fp32 model";
  }

  @Override
  public String usage() {
    return "[--model DIR (default: tiny reference model)] [--text FILE] [--max-bytes N] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args = Args.parse(argv, Set.of("model", "text", "max-bytes"), Set.of("json"));
    Path model =
        args.present("model") ? Path.of(args.required("model")) : TinyReferenceModel.shipped();
    int seqLen = Math.min(TinyReferenceModel.EVAL_SEQ_LEN, ModelConfig.read(model).maxPositions());
    TableText.Inputs in =
        TableText.inputs(
            args, model, DEFAULT_MAX_BYTES, seqLen, QuantizeCommand.SAMPLES, QuantizeCommand.SEED);
    String textName = in.text().name();
    int[] tokens = in.tokens();
    Path work = Files.createTempDirectory("compactor-quality-table");
    try {
      QualityTable table = new QualityTable(model, work, tokens, in.calibration(), seqLen);
      long t0 = System.nanoTime();
      List<QualityTable.Row> rows =
          table.run((phase, done, total) -> err.printf("%s: %d/%d rows%n", phase, done, total));
      double seconds = (System.nanoTime() - t0) / 1e9;
      if (args.has("json")) {
        out.println(json(model, textName, tokens.length, table.setup(), rows));
      } else {
        print(out, model, textName, tokens.length, table.setup(), rows, seconds);
      }
    } finally {
      TableText.deleteRecursively(work);
    }
    return 0;
  }

  private static void print(
      PrintStream out,
      Path model,
      String textName,
      int tokens,
      QualityTable.Setup setup,
      List<QualityTable.Row> rows,
      double seconds) {
    out.printf("model: %s (%s)%n", model, TableText.weightsHash(model));
    out.printf(
        "text: %s, %d tokens, windows of %d; GPTQ/AWQ calibration: %d windows of the Europarl"
            + " training split%n",
        textName, tokens, setup.seqLen(), setup.calibrationSamples());
    if (setup.groupSize() != 128) {
      out.printf(
          "note: the model's linear widths are not multiples of 128; int4 rows use group size"
              + " %d%n",
          setup.groupSize());
    }
    out.printf(
        Locale.ROOT,
        "%-30s %10s %8s %10s %7s %12s %7s  %s%n",
        "format",
        "ppl",
        "dPPL%",
        "KL",
        "top1%",
        "bytes",
        "bpw",
        "notes");
    for (QualityTable.Row r : rows) {
      out.printf(
          Locale.ROOT,
          "%-30s %10.4f %+8.3f %10.6f %7.2f %,12d %7.3f  %s%n",
          r.name(),
          r.perplexity(),
          r.deltaPplPercent(),
          r.result().klDivergence(),
          100 * r.result().top1Agreement(),
          r.bytes(),
          r.bitsPerWeight(),
          r.note());
    }
    out.printf(
        "bytes: all tensors as quantized (HF rows: decoder linears quantized, embeddings/norms/head"
            + " as in the source; GGUF rows: the file, embeddings and output quantized too)."
            + " bpw: stored bits per decoder-linear weight incl. scales. Weight-only error: the"
            + " activations stay fp32 (llama.cpp also quantizes them, so its KL at Q8_0 is ~3x"
            + " higher). %.0f s.%n",
        seconds);
  }

  private static String json(
      Path model,
      String textName,
      int tokens,
      QualityTable.Setup setup,
      List<QualityTable.Row> rows) {
    ObjectNode root = TableText.jsonHeader(model, textName, tokens, setup.seqLen());
    root.put("groupSize", setup.groupSize());
    ArrayNode a = root.putArray("rows");
    for (QualityTable.Row r : rows) {
      a.addObject()
          .put("format", r.name())
          .put("perplexity", r.perplexity())
          .put("deltaPplPercent", r.deltaPplPercent())
          .put("klDivergence", r.result().klDivergence())
          .put("top1Agreement", r.result().top1Agreement())
          .put("bytes", r.bytes())
          .put("bitsPerWeight", r.bitsPerWeight())
          .put("note", r.note());
    }
    return root.toString();
  }
}
