package dev.compactor.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.engine.TorchThreads;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * How close perplexity evaluation comes to the machine's matmul speed: evaluation tokens/s on the
 * tiny reference model and on a random ~100M-parameter Llama, each turned into achieved FLOP/s (2 ×
 * matmul parameters per token, plus the attention products) and divided by the fp32 matmul GFLOP/s
 * DJL reaches in the same run. Argument: {@code [tokens-for-100M]} (default 2048).
 *
 * <p>Run from the repository root: {@code mvn -B -q -ntp -DskipTests package -pl cli,bench -am &&
 * java -Dai.djl.offline=true -cp "bench/target/classes:cli/target/lib/*"
 * dev.compactor.bench.EvalThroughputBench}
 */
public final class EvalThroughputBench {

  private EvalThroughputBench() {}

  public static void main(String[] args) throws Exception {
    TorchThreads.configure();
    int bigTokens = args.length > 0 ? Integer.parseInt(args[0]) : 2048;
    System.out.printf(
        "cores %d, DJL engine %s%n",
        Runtime.getRuntime().availableProcessors(),
        ai.djl.engine.Engine.getInstance().getEngineName());
    double peak = matmulGflops(1024, 5);
    System.out.printf("fp32 matmul 1024^3: %.1f GFLOP/s (best of 5)%n", peak);

    Path tinyDir = TinyReferenceModel.shipped();
    String text = Corpus.europarlEnglish().validationText();
    EvalText tiny = EvalText.of(new ByteTokenizer(), text);
    try (Transformer model = Transformer.load(tinyDir, Device.cpu())) {
      report("tiny-llama-v1", model.config(), 256, model, tiny.tokens(), tiny.scoredBytes(), peak);
    }

    ModelConfig big = ModelConfig.llama(32000, 768, 2048, 12, 12, 4, 1024);
    try (Transformer model = Transformer.randomInit(big, 7, Device.cpu())) {
      int[] tokens = new int[bigTokens + 1];
      SplittableRandom r = new SplittableRandom(3);
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = r.nextInt(big.vocabSize());
      }
      report("random llama-100M", big, 512, model, tokens, tokens.length, peak);
    }
    double after = matmulGflops(1024, 5);
    System.out.printf("fp32 matmul 1024^3 again: %.1f GFLOP/s (noise check)%n", after);
  }

  private static void report(
      String name,
      ModelConfig c,
      int seqLen,
      Transformer model,
      int[] tokens,
      long bytes,
      double peakGflops) {
    PerplexityEvaluator eval = new PerplexityEvaluator(seqLen, seqLen);
    int warm = Math.min(tokens.length, seqLen + 1);
    eval.evaluate(model, java.util.Arrays.copyOf(tokens, warm), warm, ProgressListener.NONE);
    PerplexityResult r = eval.evaluate(model, tokens, bytes, ProgressListener.NONE);
    long embedding = (long) c.vocabSize() * c.hiddenSize();
    long matmulParams = c.parameterCount() - embedding;
    // Full masked attention as computed: QK^T and AV are each 2 * seqLen * (heads * headDim) FLOPs
    // per token and layer.
    double attention = 4.0 * c.numLayers() * seqLen * c.numHeads() * c.headDim();
    double flopsPerToken = 2.0 * matmulParams + attention;
    double gflops = flopsPerToken * r.tokensPerSecond() / 1e9;
    System.out.printf(
        "%-18s params %,d (matmul %,d), seq %d: %,.0f tokens/s, %.2f GFLOP/s = %.1f%% of matmul"
            + " peak (ppl %.3f over %d tokens, %.1f s)%n",
        name,
        c.parameterCount(),
        matmulParams,
        seqLen,
        r.tokensPerSecond(),
        gflops,
        100 * gflops / peakGflops,
        r.perplexity(),
        r.tokens(),
        r.seconds());
  }

  private static double matmulGflops(int n, int reps) {
    try (NDManager m = NDManager.newBaseManager()) {
      NDArray a = m.randomNormal(new Shape(n, n));
      NDArray b = m.randomNormal(new Shape(n, n));
      a.matMul(b).close();
      double best = 0;
      for (int i = 0; i < reps; i++) {
        long t0 = System.nanoTime();
        NDArray c = a.matMul(b);
        double s = (System.nanoTime() - t0) / 1e9;
        c.close();
        best = Math.max(best, 2.0 * n * n * n / s / 1e9);
      }
      return best;
    }
  }
}
