package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.PeakMemory;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code compactor eval}: perplexity and bits per byte of a model on a text file, and with {@code
 * --baseline} how far its predictions moved from the baseline model's (KL divergence, top-1
 * agreement).
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
        + " [--baseline DIR] [--json] [--layer-by-layer]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of("model", "adapter", "text", "seq-len", "stride", "baseline"),
            Set.of("json", "layer-by-layer"));
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
      if (args.has("json")) {
        out.println(json(ppl, div, seqLen, stride, memory));
      } else {
        print(out, modelDir, textFile, ppl, div, seqLen, stride, memory);
      }
    }
    return 0;
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

  private static String json(
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
    return node.toString();
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
