package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.infer.GgufCausalLM;
import dev.compactor.core.infer.GgufLlama;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Generation;
import dev.compactor.core.model.GenerationSettings;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code compactor generate}: continues a prompt with a model, greedy or sampled, and reports the
 * prefill and decode speed (on stderr; with {@code --json} one JSON object on stdout holds the text
 * and the speeds). With {@code --gguf FILE} the model is that GGUF file run natively on the JVM
 * ({@link GgufLlama}: F32/F16/Q8_0/Q4_0/Q4_K_M/Q6_K... weights, prompt fed as one batched prefill)
 * and {@code --model DIR} only supplies the tokenizer.
 */
final class GenerateCommand implements Command {

  @Override
  public String name() {
    return "generate";
  }

  @Override
  public String summary() {
    return "continue a prompt with a model";
  }

  @Override
  public String usage() {
    return "--model DIR --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--seed S]"
        + " [--json] [--gguf FILE | --adapter PEFT_DIR]";
  }

  /** JSON has no NaN: a speed that was not measured (too few tokens) is null. */
  private static void putSpeed(ObjectNode node, String key, double value) {
    if (Double.isFinite(value)) {
      node.put(key, value);
    } else {
      node.putNull(key);
    }
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of(
                "model", "prompt", "max-tokens", "temperature", "top-k", "seed", "gguf", "adapter"),
            Set.of("json"));
    Path dir = args.requiredPath("model");
    String prompt = args.required("prompt");
    int maxTokens = args.integer("max-tokens", 100);
    double temperature = args.number("temperature", 0.8);
    int topK = args.integer("top-k", 0);
    long seed = args.longValue("seed", 0);
    if (maxTokens < 1) {
      throw new UsageException("--max-tokens must be at least 1, found " + maxTokens);
    }
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new UsageException("--temperature must be a number >= 0, found " + temperature);
    }
    if (topK < 0) {
      throw new UsageException("--top-k must be >= 0, found " + topK);
    }
    if (args.present("gguf") && args.present("adapter")) {
      throw new UsageException("--adapter applies to a safetensors --model, not to --gguf");
    }
    try (TextTokenizer tokenizer = Tokenizers.forModel(dir);
        CausalLM model =
            args.present("gguf")
                ? new GgufCausalLM(GgufLlama.load(args.requiredPath("gguf")))
                : args.present("adapter")
                    ? ModelLoading.adapted(dir, args.requiredPath("adapter"))
                    : ModelLoading.resident(dir)) {
      if (tokenizer.encode(prompt).length == 0) {
        throw new UsageException("--prompt must not be empty");
      }
      int[] ids = tokenizer.encodeWithBos(prompt);
      Generation.Timed g =
          Generation.generateTimed(
              model, ids, maxTokens, new GenerationSettings(temperature, topK, seed));
      String continuation = tokenizer.decode(g.tokens());
      if (args.has("json")) {
        ObjectNode node = new ObjectMapper().createObjectNode();
        node.put("prompt", prompt);
        node.put("text", continuation);
        node.put("promptTokens", g.promptTokens());
        node.put("generatedTokens", g.tokens().length);
        node.put("prefillSeconds", g.prefillNanos() / 1e9);
        node.put("decodeSeconds", g.decodeNanos() / 1e9);
        putSpeed(node, "prefillTokensPerSecond", g.prefillTokensPerSecond());
        putSpeed(node, "decodeTokensPerSecond", g.decodeTokensPerSecond());
        out.println(node);
      } else {
        out.println(prompt + continuation);
        err.printf(
            "prefill %d tokens at %.1f tokens/s, decode %d tokens at %.1f tokens/s%n",
            g.promptTokens(),
            g.prefillTokensPerSecond(),
            Math.max(0, g.tokens().length - 1),
            g.decodeTokensPerSecond());
      }
    }
    return 0;
  }
}
