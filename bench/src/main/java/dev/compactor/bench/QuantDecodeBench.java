package dev.compactor.bench;

import dev.compactor.core.gguf.GgmlQuantizer;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufValue;
import dev.compactor.core.gguf.GgufWriter;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.gguf.LlamaQuantMix;
import dev.compactor.core.infer.GgufLlama;
import dev.compactor.core.infer.QuantKernels;
import dev.compactor.core.infer.QuantMatrix;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Issue #13's decode check: one synthetic ~124 M-parameter Llama (hidden 768, 12 layers, 12 heads,
 * 4 KV heads, FFN 2048, vocab 32000, random weights; {@code --shape 1b} for a ~1.1 B one) written
 * as GGUF F32, Q8_0 and Q4_0 (every matrix in that type, norms F32) and Q4_K_M (llama-quantize's
 * mix for this shape, {@link LlamaQuantMix}: Q4_K, with Q6_K on the head and on attn_v / ffn_down
 * of the {@code use_more_bits} layers), each decoded by {@link GgufLlama} on the JVM: tokens/s
 * (median of {@code --reps} runs of {@code --tokens} tokens after a warm-up), bytes of weights read
 * per token, the bandwidth that implies, and its fraction of this machine's memory read bandwidth
 * (several threads streaming a large array through the F32 dot kernel) and copy bandwidth ({@link
 * MemoryBandwidth}), both measured in the same run before and after. Prints the ratios Q8_0/F32 and
 * Q4_0/F32 (goals: Q4_0 ≥ 2.5× F32, ≥ 60 % of read bandwidth). Prefill: the same {@code --prompt}
 * random tokens fed token by token and as one batched prefill ({@link GgufLlama.Session#prefill}),
 * median of the reps, and the ratio batched / token by token.
 *
 * <p>Run from the repository root:
 *
 * <pre>
 * mvn -B -ntp -q -pl bench -am -DskipTests package dependency:build-classpath \
 *     -Dmdep.outputFile=target/cp.txt
 * java -Xmx3g --add-modules jdk.incubator.vector \
 *     -cp bench/target/classes:$(cat bench/target/cp.txt) dev.compactor.bench.QuantDecodeBench
 * </pre>
 *
 * <p>Each type is decoded in a child JVM of its own (same heap limit), so no type runs on JIT code
 * profiled for another.
 *
 * <p>Options: {@code --types f32,q8_0,q4_0,q4_k_m}, {@code --prompt 64}, {@code --threads 2} (the
 * bench ignores {@code COMPACTOR_INFER_THREADS}), {@code --tokens 32}, {@code --reps 5}, {@code
 * --dir /tmp/quant-decode-bench} (the three files, ~0.8 GB, kept for reuse and for llama.cpp),
 * {@code --shape 124m|1b} ({@code 1b}: hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 32000,
 * ~1.1 B parameters, 4.4 GB in F32: give the JVM {@code -Xmx6g}), {@code --layers} (default: the
 * shape's), {@code --bandwidth-mb 512}.
 */
public final class QuantDecodeBench {

  private static final String[] TYPES = {"f32", "q8_0", "q4_0", "q4_k_m"};

  /** A synthetic Llama shape: {@code 124m} (GPT-2-small sized) or {@code 1b} (Llama-3.2-1B's). */
  record Shape(String name, int hidden, int heads, int kvHeads, int ffn, int vocab, int layers) {
    static Shape parse(String s, Integer layers) {
      Shape base =
          switch (s) {
            case "124m" -> new Shape("124m", 768, 12, 4, 2048, 32000, 12);
            case "1b" -> new Shape("1b", 2048, 32, 8, 8192, 32000, 16);
            default ->
                throw new IllegalArgumentException("--shape: expected 124m or 1b, found " + s);
          };
      return layers == null
          ? base
          : new Shape(
              base.name, base.hidden, base.heads, base.kvHeads, base.ffn, base.vocab, layers);
    }
  }

  private QuantDecodeBench() {}

  public static void main(String[] argv) throws Exception {
    BenchArgs args = new BenchArgs(argv);
    int threads = args.integer("--threads", 2);
    int tokens = args.integer("--tokens", 32);
    int reps = args.integer("--reps", 5);
    int prompt = args.integer("--prompt", 64);
    Shape shape =
        Shape.parse(
            args.get("--shape", "124m"),
            args.flag("--layers") ? args.integer("--layers", 0) : null);
    int bwMb = args.integer("--bandwidth-mb", 512);
    Path dir = Path.of(args.get("--dir", "/tmp/quant-decode-bench"));
    if (args.flag("--kernels")) {
      kernels();
      return;
    }
    if (args.flag("--child")) {
      double[] r =
          decode(
              Path.of(args.get("--file", null)),
              args.get("--type", null),
              threads,
              tokens,
              reps,
              prompt);
      StringBuilder line = new StringBuilder("RESULT");
      for (double v : r) {
        line.append(' ').append(v);
      }
      System.out.println(line);
      return;
    }
    Files.createDirectories(dir);
    System.out.printf(
        "java %s, %d cores, %d threads, vector lanes %d (fp32), load %.2f%n",
        Runtime.version(),
        Runtime.getRuntime().availableProcessors(),
        threads,
        QuantKernels.lanes(),
        loadAverage());

    Map<String, Path> files = new LinkedHashMap<>();
    for (String t : TYPES) {
      Path f = dir.resolve("synthetic-" + shape.name() + "-l" + shape.layers() + "-" + t + ".gguf");
      if (!Files.exists(f)) {
        long t0 = System.nanoTime();
        writeSynthetic(f, t, shape, 42);
        System.out.printf(
            "wrote %s (%d MB) in %.1f s%n", f, Files.size(f) >> 20, (System.nanoTime() - t0) / 1e9);
      }
      files.put(t, f);
    }

    double[] readBefore = readBandwidth(bwMb, threads);
    double[] copyBefore = MemoryBandwidth.measure(bwMb << 20, threads, 6);
    System.out.printf(
        "memory read  %.1f GB/s (1 thread) %.1f GB/s (%d threads); copy %.1f / %.1f GB/s%n",
        readBefore[0], readBefore[1], threads, copyBefore[0], copyBefore[1]);

    Map<String, double[]> results = new LinkedHashMap<>();
    for (String name : args.get("--types", String.join(",", TYPES)).split(",")) {
      String t = name.toLowerCase(java.util.Locale.ROOT);
      if (!files.containsKey(t)) {
        throw new IllegalArgumentException("--types: expected some of " + files.keySet());
      }
      results.put(t, decodeInChild(files.get(t), t, threads, tokens, reps, prompt));
    }

    double[] readAfter = readBandwidth(bwMb, threads);
    double[] copyAfter = MemoryBandwidth.measure(bwMb << 20, threads, 6);
    System.out.printf(
        "memory read  %.1f GB/s (1 thread) %.1f GB/s (%d threads); copy %.1f / %.1f GB/s (after)%n",
        readAfter[0], readAfter[1], threads, copyAfter[0], copyAfter[1]);
    double read = Math.max(readBefore[1], readAfter[1]);
    double copy = Math.max(copyBefore[1], copyAfter[1]);

    System.out.printf(
        "%-6s %10s %12s %10s %9s %9s %8s %12s %12s %8s%n",
        "type",
        "tok/s",
        "MB/token",
        "GB/s",
        "of read",
        "of copy",
        "vs F32",
        "prefill tb",
        "prefill bat",
        "bat/tb");
    double f32 = results.containsKey("f32") ? results.get("f32")[0] : Double.NaN;
    for (Map.Entry<String, double[]> e : results.entrySet()) {
      double[] v = e.getValue();
      double tps = v[0];
      double bytes = v[1];
      double gbps = tps * bytes / 1e9;
      System.out.printf(
          "%-6s %10.1f %12.1f %10.2f %8.0f%% %8.0f%% %7.2fx %12.1f %12.1f %7.2fx   (runs %s)%n",
          e.getKey(),
          tps,
          bytes / 1e6,
          gbps,
          100 * gbps / read,
          100 * gbps / copy,
          tps / f32,
          v[2],
          v[3],
          v[3] / v[2],
          Arrays.toString(round(Arrays.copyOfRange(v, 4, v.length))));
    }
    System.out.printf("load average at the end %.2f%n", loadAverage());
  }

  /**
   * One thread, one 2048 x 2048 matrix per type (cache-resident rows streamed from memory): GB/s of
   * stored bytes and Mvalues/s for the vector kernels and the scalar references.
   */
  private static void kernels() {
    int rows = 2048;
    int cols = 2048;
    SplittableRandom r = new SplittableRandom(1);
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextDouble() - 0.5f;
    }
    float[] x = new float[cols];
    for (int i = 0; i < cols; i++) {
      x[i] = (float) r.nextDouble();
    }
    GgmlType[] types = {
      GgmlType.F32,
      GgmlType.F16,
      GgmlType.Q8_0,
      GgmlType.Q4_0,
      GgmlType.Q5_0,
      GgmlType.Q4_K,
      GgmlType.Q6_K
    };
    for (GgmlType t : types) {
      byte[] q = t == GgmlType.F32 ? f32Bytes(w) : GgmlQuantizer.quantize(t, w, rows, cols, null);
      QuantMatrix m = QuantMatrix.of(t.name(), t, rows, cols, q);
      for (boolean ref : new boolean[] {false, true}) {
        if (ref && t == GgmlType.F32) {
          continue;
        }
        double best = Double.MAX_VALUE;
        float sink = 0;
        int rowBytes = (int) t.bytesFor(cols);
        for (int rep = 0; rep < 8; rep++) {
          long t0 = System.nanoTime();
          for (int row = 0; row < rows; row++) {
            sink += ref ? reference(t, q, row * rowBytes, x, cols) : m.dot(row, x);
          }
          best = Math.min(best, System.nanoTime() - t0);
        }
        System.out.printf(
            "%-9s %6.2f GB/s stored, %7.0f Mvalues/s (checksum %.3g)%n",
            t + (ref ? " ref" : ""), q.length / best, (double) rows * cols / best * 1e3, sink);
      }
    }
  }

  private static float reference(GgmlType t, byte[] q, int off, float[] x, int n) {
    return switch (t) {
      case F16 -> QuantKernels.dotF16Reference(q, off, x, n);
      case Q8_0 -> QuantKernels.dotQ8_0Reference(q, off, x, n);
      case Q4_0 -> QuantKernels.dotQ4_0Reference(q, off, x, n);
      case Q5_0 -> QuantKernels.dotQ5_0Reference(q, off, x, n);
      case Q4_K -> QuantKernels.dotQ4_KReference(q, off, x, n);
      case Q6_K -> QuantKernels.dotQ6_KReference(q, off, x, n);
      default -> throw new IllegalArgumentException(t.toString());
    };
  }

  /**
   * {@link #decode} in a fresh JVM per type: one JVM that had run F32 decoded Q4_0 at 35 tok/s
   * where a fresh one did 57 (the JIT's profile of the shared kernel call path), and a deployment
   * runs one model per process anyway.
   */
  private static double[] decodeInChild(
      Path file, String type, int threads, int tokens, int reps, int prompt)
      throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx" + Math.max(512, Runtime.getRuntime().maxMemory() >> 20) + "m");
    cmd.add("--add-modules");
    cmd.add("jdk.incubator.vector");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(QuantDecodeBench.class.getName());
    for (String a :
        new String[] {
          "--child",
          "--file",
          file.toString(),
          "--type",
          type,
          "--prompt",
          Integer.toString(prompt),
          "--threads",
          Integer.toString(threads),
          "--tokens",
          Integer.toString(tokens),
          "--reps",
          Integer.toString(reps)
        }) {
      cmd.add(a);
    }
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    double[] result = null;
    try (java.io.BufferedReader r =
        new java.io.BufferedReader(
            new java.io.InputStreamReader(
                p.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        if (line.startsWith("RESULT ")) {
          String[] f = line.substring(7).trim().split(" ");
          result = new double[f.length];
          for (int i = 0; i < f.length; i++) {
            result[i] = Double.parseDouble(f[i]);
          }
        } else if (!line.startsWith("WARNING: Using incubator")) {
          System.out.println(line);
        }
      }
    }
    int rc = p.waitFor();
    if (rc != 0 || result == null) {
      throw new IllegalStateException(type + " decode child exited with " + rc);
    }
    return result;
  }

  /**
   * {median decode tok/s, weight bytes per token, median prefill tok/s token by token, median
   * prefill tok/s batched, each run's decode tok/s...}.
   */
  private static double[] decode(
      Path file, String type, int threads, int tokens, int reps, int prompt) throws IOException {
    long t0 = System.nanoTime();
    try (GgufLlama model = GgufLlama.load(file, threads)) {
      double loadS = (System.nanoTime() - t0) / 1e9;
      int vocab = model.config().vocab();
      SplittableRandom r = new SplittableRandom(7);
      // warm-up: JIT compiles the kernels and the attention loops
      runTokens(model, r, vocab, Math.max(tokens, 16));
      int[] promptIds = new int[prompt];
      for (int i = 0; i < prompt; i++) {
        promptIds[i] = r.nextInt(vocab);
      }
      model.session(prompt).prefill(promptIds);
      double[] runs = new double[reps];
      double[] stepwise = new double[reps];
      double[] batched = new double[reps];
      for (int i = 0; i < reps; i++) {
        long s = System.nanoTime();
        runTokens(model, r, vocab, tokens);
        runs[i] = tokens / ((System.nanoTime() - s) / 1e9);
        GgufLlama.Session a = model.session(prompt);
        s = System.nanoTime();
        for (int t : promptIds) {
          a.next(t);
        }
        stepwise[i] = prompt / ((System.nanoTime() - s) / 1e9);
        GgufLlama.Session b = model.session(prompt);
        s = System.nanoTime();
        b.prefill(promptIds);
        batched[i] = prompt / ((System.nanoTime() - s) / 1e9);
      }
      double median = median(runs);
      System.out.printf(
          "%s: loaded in %.1f s, %.1f tok/s median of %d x %d tokens; prefill of %d: %.1f tok/s"
              + " token by token, %.1f batched%n",
          type, loadS, median, reps, tokens, prompt, median(stepwise), median(batched));
      double[] out = new double[4 + reps];
      out[0] = median;
      out[1] = model.weightBytesPerToken();
      out[2] = median(stepwise);
      out[3] = median(batched);
      System.arraycopy(runs, 0, out, 4, reps);
      return out;
    }
  }

  private static double median(double[] v) {
    double[] sorted = v.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  private static void runTokens(GgufLlama model, SplittableRandom r, int vocab, int n) {
    GgufLlama.Session s = model.session(n);
    int tok = r.nextInt(vocab);
    for (int i = 0; i < n; i++) {
      tok = GgufLlama.argmax(s.next(tok));
    }
  }

  /**
   * GB/s streaming a float array through the F32 dot kernel: {1 thread, threads}, best of 8 (on a
   * loaded machine the best pass is the one whose threads were all scheduled).
   */
  static double[] readBandwidth(int mb, int threads) throws Exception {
    float[] big = new float[mb << 18];
    Arrays.fill(big, 1f);
    float[] ones = new float[1 << 14];
    Arrays.fill(ones, 1f);
    double[] out = new double[2];
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      int[] counts = {1, threads};
      for (int k = 0; k < 2; k++) {
        int parts = counts[k];
        double best = 0;
        for (int rep = 0; rep <= 8; rep++) {
          long t0 = System.nanoTime();
          List<Future<Float>> fs = new ArrayList<>();
          for (int p = 0; p < parts; p++) {
            int from = (int) ((long) big.length * p / parts);
            int to = (int) ((long) big.length * (p + 1) / parts);
            fs.add(
                pool.submit(
                    () -> {
                      float s = 0;
                      for (int i = from; i + ones.length <= to; i += ones.length) {
                        s += QuantKernels.dotF32(big, i, ones, ones.length);
                      }
                      return s;
                    }));
          }
          float sum = 0;
          for (Future<Float> f : fs) {
            sum += f.get();
          }
          double gbps = 4.0 * big.length / (System.nanoTime() - t0);
          if (sum != 0 && rep > 0) {
            best = Math.max(best, gbps);
          }
        }
        out[k] = best;
      }
    } finally {
      pool.shutdownNow();
    }
    return out;
  }

  /**
   * Writes the synthetic model with every matrix of {@code type} ({@code f32}, {@code q8_0}, {@code
   * q4_0}, ...) or, for {@code q4_k_m}, each in the type llama-quantize's Q4_K_M mix gives it;
   * returns the file size.
   */
  static long writeSynthetic(Path out, String type, Shape shape, long seed) throws IOException {
    int hidden = shape.hidden();
    int heads = shape.heads();
    int kvHeads = shape.kvHeads();
    int headDim = hidden / heads;
    int ffn = shape.ffn();
    int vocab = shape.vocab();
    int layers = shape.layers();
    Map<String, long[]> shapes = new LinkedHashMap<>();
    shapes.put("token_embd.weight", new long[] {vocab, hidden});
    for (int l = 0; l < layers; l++) {
      String b = "blk." + l + ".";
      shapes.put(b + "attn_norm.weight", new long[] {hidden});
      shapes.put(b + "attn_q.weight", new long[] {hidden, hidden});
      shapes.put(b + "attn_k.weight", new long[] {kvHeads * headDim, hidden});
      shapes.put(b + "attn_v.weight", new long[] {kvHeads * headDim, hidden});
      shapes.put(b + "attn_output.weight", new long[] {hidden, hidden});
      shapes.put(b + "ffn_norm.weight", new long[] {hidden});
      shapes.put(b + "ffn_gate.weight", new long[] {ffn, hidden});
      shapes.put(b + "ffn_up.weight", new long[] {ffn, hidden});
      shapes.put(b + "ffn_down.weight", new long[] {hidden, ffn});
    }
    shapes.put("output_norm.weight", new long[] {hidden});
    shapes.put("output.weight", new long[] {vocab, hidden});
    Map<String, GgmlType> types = new LinkedHashMap<>();
    LlamaQuantMix.Model mix = new LlamaQuantMix.Model(layers, heads, kvHeads, false, false);
    for (Map.Entry<String, long[]> e : shapes.entrySet()) {
      GgmlType t;
      if (e.getValue().length == 1) {
        t = GgmlType.F32;
      } else if (type.equals("q4_k_m")) {
        t = LlamaQuantMix.typeFor(LlamaFileType.Q4_K_M, mix, e.getKey(), e.getValue());
      } else {
        t = GgmlType.parse(type);
      }
      types.put(e.getKey(), t);
    }
    SplittableRandom r = new SplittableRandom(seed);
    try (GgufWriter w = GgufWriter.create(out)) {
      w.put("general.architecture", GgufValue.string("llama"));
      w.put("general.name", GgufValue.string("synthetic-" + shape.name()));
      w.put(GgufWriter.ALIGNMENT_KEY, GgufValue.u32(GgufWriter.DEFAULT_ALIGNMENT));
      w.put("llama.context_length", GgufValue.u32(2048));
      w.put("llama.embedding_length", GgufValue.u32(hidden));
      w.put("llama.block_count", GgufValue.u32(layers));
      w.put("llama.feed_forward_length", GgufValue.u32(ffn));
      w.put("llama.attention.head_count", GgufValue.u32(heads));
      w.put("llama.attention.head_count_kv", GgufValue.u32(kvHeads));
      w.put("llama.rope.freq_base", GgufValue.f32(10000f));
      w.put("llama.attention.layer_norm_rms_epsilon", GgufValue.f32(1e-5f));
      w.put("llama.rope.dimension_count", GgufValue.u32(headDim));
      w.put("llama.vocab_size", GgufValue.u32(vocab));
      for (Map.Entry<String, long[]> e : shapes.entrySet()) {
        w.addTensor(e.getKey(), e.getValue(), types.get(e.getKey()));
      }
      w.writeHeader();
      for (Map.Entry<String, long[]> e : shapes.entrySet()) {
        long[] s = e.getValue();
        if (s.length == 1) {
          float[] ones = new float[(int) s[0]];
          Arrays.fill(ones, 1f);
          w.writeTensor(e.getKey(), f32Bytes(ones));
          continue;
        }
        int rows = (int) s[0];
        int cols = (int) s[1];
        float[] v = new float[rows * cols];
        float std = (float) (1.0 / Math.sqrt(cols));
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (r.nextDouble() * 2 - 1) * std * 1.7f;
        }
        GgmlType t = types.get(e.getKey());
        byte[] bytes =
            t == GgmlType.F32 ? f32Bytes(v) : GgmlQuantizer.quantize(t, v, rows, cols, null);
        w.writeTensor(e.getKey(), bytes);
      }
    }
    return Files.size(out);
  }

  private static byte[] f32Bytes(float[] v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.array();
  }

  private static double[] round(double[] v) {
    double[] o = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      o[i] = Math.round(v[i] * 10) / 10.0;
    }
    return o;
  }

  private static double loadAverage() {
    return java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage();
  }
}
