package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.infer.GgufLlama;
import dev.compactor.core.infer.InferThreads;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * {@code compactor bench-decode}: runs a llama GGUF file (F32, F16, Q8_0, Q4_0 weights) natively on
 * the JVM ({@link GgufLlama}) and prints prefill and decode tokens/s with the weight bandwidth the
 * decode speed implies. The prompt is random token ids; prefill is token by token in this version.
 */
final class BenchDecodeCommand implements Command {

  @Override
  public String name() {
    return "bench-decode";
  }

  @Override
  public String summary() {
    return "native decode speed of a GGUF file (F32/F16/Q8_0/Q4_0)";
  }

  @Override
  public String usage() {
    return "--gguf FILE [--tokens N] [--prompt-tokens N] [--threads N] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(argv, Set.of("gguf", "tokens", "prompt-tokens", "threads"), Set.of("json"));
    Path gguf = args.requiredPath("gguf");
    int tokens = args.integer("tokens", 128);
    int promptTokens = args.integer("prompt-tokens", 32);
    int threads = args.integer("threads", InferThreads.fromEnvironment());
    if (!Files.isRegularFile(gguf)) {
      throw new UsageException("--gguf: no file " + gguf);
    }
    if (tokens < 2 || promptTokens < 1 || threads < 1) {
      throw new UsageException(
          "--tokens must be >= 2, --prompt-tokens and --threads >= 1; found "
              + tokens
              + ", "
              + promptTokens
              + ", "
              + threads);
    }
    long t0 = System.nanoTime();
    try (GgufLlama model = GgufLlama.load(gguf, threads)) {
      double loadS = (System.nanoTime() - t0) / 1e9;
      int vocab = model.config().vocab();
      if (promptTokens + tokens > model.config().context()) {
        throw new UsageException(
            "--prompt-tokens + --tokens exceed the context of " + model.config().context());
      }
      SplittableRandom r = new SplittableRandom(1);
      // warm-up pass: the kernels are compiled by the JIT before anything is timed
      GgufLlama.Session warm = model.session(Math.min(16, model.config().context()));
      for (int i = 0; i < Math.min(16, model.config().context()); i++) {
        warm.next(r.nextInt(vocab));
      }
      GgufLlama.Session s = model.session(promptTokens + tokens);
      long p0 = System.nanoTime();
      float[] logits = null;
      for (int i = 0; i < promptTokens; i++) {
        logits = s.next(r.nextInt(vocab));
      }
      long p1 = System.nanoTime();
      int tok = GgufLlama.argmax(logits);
      for (int i = 0; i < tokens; i++) {
        tok = GgufLlama.argmax(s.next(tok));
      }
      long d1 = System.nanoTime();
      double prefill = promptTokens / ((p1 - p0) / 1e9);
      double decode = tokens / ((d1 - p1) / 1e9);
      double mbPerToken = model.weightBytesPerToken() / 1e6;
      if (args.has("json")) {
        ObjectNode n = new ObjectMapper().createObjectNode();
        n.put("gguf", gguf.toString());
        n.put("threads", threads);
        n.put("loadSeconds", loadS);
        n.put("promptTokens", promptTokens);
        n.put("decodeTokens", tokens);
        n.put("prefillTokensPerSecond", prefill);
        n.put("decodeTokensPerSecond", decode);
        n.put("weightMegabytesPerToken", mbPerToken);
        n.put("weightGigabytesPerSecond", decode * mbPerToken / 1e3);
        out.println(n);
      } else {
        out.printf(
            "%s: loaded in %.1f s, %d threads%n"
                + "prefill %d tokens at %.1f tokens/s (token by token), decode %d tokens at %.1f"
                + " tokens/s%n"
                + "weights read per token %.1f MB, %.2f GB/s while decoding%n",
            gguf.getFileName(),
            loadS,
            threads,
            promptTokens,
            prefill,
            tokens,
            decode,
            mbPerToken,
            decode * mbPerToken / 1e3);
      }
    }
    return 0;
  }
}
