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
 * {@code compactor bench-decode}: runs a llama GGUF file (F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q4_K, Q5_K, Q6_K weights, so Q4_K_M files) natively on the JVM ({@link GgufLlama}) and prints
 * prefill and decode tokens/s with the weight bandwidth the decode speed implies. The prompt is
 * random token ids, fed once token by token and once batched ({@link GgufLlama.Session#prefill}),
 * so the two prefill speeds come from the same run.
 */
final class BenchDecodeCommand implements Command {

  @Override
  public String name() {
    return "bench-decode";
  }

  @Override
  public String summary() {
    return "native prefill/decode speed of a llama GGUF file (F32/F16/Q8_0/Q4_0/Q4_K_M/Q6_K/...)";
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
      int[] prompt = new int[promptTokens];
      for (int i = 0; i < promptTokens; i++) {
        prompt[i] = r.nextInt(vocab);
      }
      // warm-up pass of both prefill paths and of decoding: the JIT compiles the kernels before
      // anything is timed
      int warmLen = Math.min(16, model.config().context());
      GgufLlama.Session warm = model.session(warmLen);
      warm.prefill(
          java.util.Arrays.copyOf(prompt, Math.max(1, Math.min(prompt.length, warmLen / 2))));
      while (warm.position() < warmLen) {
        warm.next(r.nextInt(vocab));
      }
      // the same prompt token by token (the decode kernels), then batched (the matmul kernels)
      GgufLlama.Session stepwise = model.session(promptTokens);
      long s0 = System.nanoTime();
      for (int t : prompt) {
        stepwise.next(t);
      }
      long s1 = System.nanoTime();
      GgufLlama.Session s = model.session(promptTokens + tokens);
      long p0 = System.nanoTime();
      float[] logits = s.prefill(prompt);
      long p1 = System.nanoTime();
      int tok = GgufLlama.argmax(logits);
      for (int i = 0; i < tokens; i++) {
        tok = GgufLlama.argmax(s.next(tok));
      }
      long d1 = System.nanoTime();
      double prefill = promptTokens / ((p1 - p0) / 1e9);
      double prefillStepwise = promptTokens / ((s1 - s0) / 1e9);
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
        n.put("prefillTokenByTokenTokensPerSecond", prefillStepwise);
        n.put("decodeTokensPerSecond", decode);
        n.put("weightMegabytesPerToken", mbPerToken);
        n.put("weightGigabytesPerSecond", decode * mbPerToken / 1e3);
        out.println(n);
      } else {
        out.printf(
            "%s: loaded in %.1f s, %d threads%n"
                + "prefill %d tokens at %.1f tokens/s batched, %.1f tokens/s token by token"
                + " (%.2fx)%n"
                + "decode %d tokens at %.1f tokens/s%n"
                + "weights read per token %.1f MB, %.2f GB/s while decoding%n",
            gguf.getFileName(),
            loadS,
            threads,
            promptTokens,
            prefill,
            prefillStepwise,
            prefill / prefillStepwise,
            tokens,
            decode,
            mbPerToken,
            decode * mbPerToken / 1e3);
      }
    }
    return 0;
  }
}
