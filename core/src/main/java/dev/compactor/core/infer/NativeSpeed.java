package dev.compactor.core.infer;

import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufValue;
import dev.compactor.core.gguf.LlamaFileType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Prefill and decode speed of a llama GGUF file run natively ({@link GgufLlama}, the weights as
 * stored): a prompt of {@code promptTokens} tokens through the batched prefill, then {@code
 * decodeTokens} greedy decode steps, each repeat on a fresh KV cache after one untimed warm-up run
 * (so the JIT has compiled the kernels), the median of {@code repeats} runs of each phase. The
 * evaluation stage measures the candidate's GGUF and the original model written as an F32 GGUF this
 * way in one run, so their ratio compares two files on the same engine.
 */
public final class NativeSpeed {

  /** The name of this engine in evaluation results, beside {@code djl-dequantized}. */
  public static final String ENGINE = "native-gguf";

  private NativeSpeed() {}

  /**
   * What to measure.
   *
   * @param promptTokens tokens of the prompt (one batched prefill)
   * @param decodeTokens tokens decoded one by one after it
   * @param repeats timed runs; the figures are their medians
   * @param threads threads of the matrix-vector products ({@link InferThreads})
   */
  public record Settings(int promptTokens, int decodeTokens, int repeats, int threads) {
    public Settings {
      if (promptTokens < 1 || decodeTokens < 1 || repeats < 1 || threads < 1) {
        throw new IllegalArgumentException(
            "native speed: expected prompt_tokens, decode_tokens, repeats and threads >= 1, found "
                + promptTokens
                + ", "
                + decodeTokens
                + ", "
                + repeats
                + ", "
                + threads);
      }
    }
  }

  /**
   * One file's figures.
   *
   * @param fileType the file's {@code general.file_type} ({@code Q4_0}, {@code F32}, ...), or null
   *     when the file does not say or names a type this project does not know
   * @param prefillTokensPerSecond prompt tokens over the batched prefill's wall time, median
   * @param decodeTokensPerSecond decoded tokens over the decode loop's wall time, median
   * @param prefillRuns each timed run's prefill tokens/s, in run order
   * @param decodeRuns each timed run's decode tokens/s, in run order
   * @param weightBytesPerToken stored weight bytes one decode step reads
   */
  public record Result(
      String fileType,
      Settings settings,
      double prefillTokensPerSecond,
      double decodeTokensPerSecond,
      double[] prefillRuns,
      double[] decodeRuns,
      long weightBytesPerToken) {}

  /**
   * Measures {@code gguf} with {@code prompt}'s first {@code promptTokens} ids (repeated cyclically
   * when it is shorter; ids at or above the vocabulary are refused).
   *
   * @throws UnsupportedOperationException when the file is not a llama GGUF the native path runs
   * @throws IllegalArgumentException when prompt plus decode tokens exceed the model's context
   */
  public static Result measure(Path gguf, int[] prompt, Settings s) throws IOException {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("native speed: the prompt must not be empty");
    }
    String fileType = fileType(gguf);
    try (GgufLlama model = GgufLlama.load(gguf, s.threads())) {
      int context = Math.min(model.config().context(), GgufCausalLM.MAX_POSITIONS);
      int length = s.promptTokens() + s.decodeTokens();
      if (length > context) {
        throw new IllegalArgumentException(
            "native speed: prompt_tokens + decode_tokens = "
                + length
                + " exceed the model's context of "
                + context
                + " positions");
      }
      int vocab = model.config().vocab();
      int[] ids = new int[s.promptTokens()];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = prompt[i % prompt.length];
        if (ids[i] < 0 || ids[i] >= vocab) {
          throw new IllegalArgumentException(
              "native speed: token id " + ids[i] + " is outside the vocabulary of " + vocab);
        }
      }
      run(model, ids, s.decodeTokens(), length); // warm-up, untimed
      double[] prefill = new double[s.repeats()];
      double[] decode = new double[s.repeats()];
      for (int r = 0; r < s.repeats(); r++) {
        long[] t = run(model, ids, s.decodeTokens(), length);
        prefill[r] = ids.length / (t[0] / 1e9);
        decode[r] = s.decodeTokens() / (t[1] / 1e9);
      }
      return new Result(
          fileType,
          s,
          median(prefill),
          median(decode),
          prefill,
          decode,
          model.weightBytesPerToken());
    }
  }

  /** Nanoseconds of the prefill and of the decode loop of one run on a fresh KV cache. */
  private static long[] run(GgufLlama model, int[] prompt, int decodeTokens, int capacity) {
    GgufLlama.Session session = model.session(capacity);
    long t0 = System.nanoTime();
    float[] logits = session.prefill(prompt);
    long t1 = System.nanoTime();
    int token = GgufLlama.argmax(logits);
    for (int i = 0; i < decodeTokens; i++) {
      token = GgufLlama.argmax(session.next(token));
    }
    long t2 = System.nanoTime();
    return new long[] {Math.max(1, t1 - t0), Math.max(1, t2 - t1)};
  }

  /** The middle value; the mean of the two middle values for an even count. */
  public static double median(double[] values) {
    if (values.length == 0) {
      throw new IllegalArgumentException("median of no values");
    }
    double[] v = values.clone();
    Arrays.sort(v);
    int n = v.length;
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }

  /** {@code general.file_type} as a {@link LlamaFileType} name, or null. */
  static String fileType(Path gguf) throws IOException {
    try (GgufReader r = GgufReader.open(gguf)) {
      GgufValue v = r.metadata().get("general.file_type");
      if (v == null) {
        return null;
      }
      long id = v.asLong();
      return Arrays.stream(LlamaFileType.values())
          .filter(t -> t.id() == id)
          .map(Enum::name)
          .findFirst()
          .orElse(null);
    }
  }
}
