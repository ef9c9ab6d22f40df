package dev.compactor.bench;

import dev.compactor.core.gguf.BlockQ4_0;
import dev.compactor.core.gguf.BlockQ8_0;
import dev.compactor.core.gguf.FastRowQuantizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Single-thread speed of the Q8_0 and Q4_0 row quantizers, in GB/s of fp32 input, for the fast
 * implementation ({@link FastRowQuantizer}) and the plain reference port ({@link BlockQ8_0}, {@link
 * BlockQ4_0}) measured in the same run, interleaved round by round, and printed as ratios of the
 * medians and of the best rounds (the best round is the steadier figure on a shared machine). The
 * outputs are compared byte for byte first, so the numbers are for identical results.
 *
 * <p>Run: {@code java -cp core/target/classes:bench/target/classes
 * dev.compactor.bench.BlockQuantizerBench [rows=256] [cols=4096] [rounds=101] [--ggml-c]}.
 *
 * <p>{@code --ggml-c} (run from the repository root, needs gcc) also compiles ggml's own C
 * reference quantizers ({@code bench/ggml-ref/quantize_ref.c}, {@code gcc -O3 -march=native}), runs
 * them on the same input in a child process right after the Java rounds, checks that their bytes
 * equal the fast Java ones, and prints the ratio of the Java fast median to the C median. {@code
 * rows=1} measures one row that stays in the L1 cache, as in the chunked GGUF export, which widens
 * one row at a time into a small float array; larger matrices also measure the memory traffic.
 */
public final class BlockQuantizerBench {

  interface RowQuantizer {
    void quantize(float[] x, int xOff, int n, byte[] y, int yOff);
  }

  private BlockQuantizerBench() {}

  public static void main(String[] args) {
    int rows = args.length > 0 ? Integer.parseInt(args[0]) : 256;
    int cols = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
    int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 101;
    boolean ggmlC = args.length > 3 && args[3].equals("--ggml-c");
    float[] x = new float[rows * cols];
    Random r = new Random(1);
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * 0.02);
    }
    System.out.printf(
        "BlockQuantizerBench: %d rows x %d cols fp32 (%.1f MB), single thread, %d rounds,"
            + " java %s%n",
        rows, cols, x.length * 4 / 1e6, rounds, System.getProperty("java.version"));
    byte[] q8 =
        run(
            "Q8_0",
            x,
            rows,
            cols,
            34,
            FastRowQuantizer::quantizeRowQ8_0,
            BlockQ8_0::quantizeRowReference,
            rounds);
    byte[] q4 =
        run(
            "Q4_0",
            x,
            rows,
            cols,
            18,
            FastRowQuantizer::quantizeRowQ4_0,
            BlockQ4_0::quantizeRowReference,
            rounds);
    if (ggmlC) {
      try {
        ggmlC(x, rows, cols, rounds, q8, q4);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** The fast medians of the last {@link #run}s, by type, for the ratio to ggml's C. */
  private static final Map<String, Double> FAST_MEDIANS = new LinkedHashMap<>();

  /**
   * Extra gcc flags for the C reference ({@code -Dggml.cflags="-march=native -ffp-contract=off"});
   * none by default: ggml-base, which holds the reference quantizers, is built without -march.
   */
  private static final String CFLAGS = System.getProperty("ggml.cflags", "");

  private static void ggmlC(float[] x, int rows, int cols, int rounds, byte[] q8, byte[] q4)
      throws IOException, InterruptedException {
    Path src = Path.of("bench/ggml-ref/quantize_ref.c");
    if (!Files.exists(src)) {
      throw new IllegalStateException("--ggml-c: run from the repository root (" + src + ")");
    }
    Path dir = Files.createTempDirectory("ggml-ref");
    Path bin = dir.resolve("quantize_ref");
    List<String> cmd = new ArrayList<>(List.of("gcc", "-O3", "-std=gnu11"));
    for (String f : CFLAGS.split(" ")) {
      if (!f.isBlank()) {
        cmd.add(f);
      }
    }
    cmd.addAll(List.of(src.toString(), "-o", bin.toString(), "-lm"));
    Process cc = new ProcessBuilder(cmd).inheritIO().start();
    if (cc.waitFor() != 0) {
      throw new IllegalStateException("--ggml-c: gcc failed");
    }
    Path in = dir.resolve("x.f32");
    ByteBuffer buf = ByteBuffer.allocate(x.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(x);
    Files.write(in, buf.array());
    Process run =
        new ProcessBuilder(
                bin.toString(),
                in.toString(),
                Integer.toString(rows),
                Integer.toString(cols),
                Integer.toString(rounds),
                dir.resolve("out").toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (run.waitFor() != 0) {
      throw new IllegalStateException("--ggml-c: the C reference failed: " + out);
    }
    for (String line : out.strip().split("\n")) {
      String[] f = line.trim().split(" ");
      String type = f[0];
      double med = Double.parseDouble(f[1]);
      double best = Double.parseDouble(f[2]);
      byte[] c = Files.readAllBytes(dir.resolve("out." + type.toLowerCase(Locale.ROOT)));
      byte[] java = type.equals("Q8_0") ? q8 : q4;
      if (!Arrays.equals(c, java)) {
        int at = Arrays.mismatch(c, java);
        int blockBytes = type.equals("Q8_0") ? 34 : 18;
        int block = at / blockBytes;
        StringBuilder values = new StringBuilder();
        for (int j = 0; j < 32; j++) {
          values.append(' ').append(Float.floatToRawIntBits(x[32 * block + j]));
        }
        throw new IllegalStateException(
            type
                + ": ggml's C reference and the fast Java bytes differ first at byte "
                + at
                + " (block "
                + block
                + ", byte "
                + at % blockBytes
                + ": C "
                + c[at]
                + ", Java "
                + java[at]
                + "); the block's fp32 bits:"
                + values);
      }
      double fast = FAST_MEDIANS.get(type);
      System.out.printf(
          "%s  ggml C reference (gcc -O3 -std=gnu11 "
              + CFLAGS
              + ", same input, after the Java rounds): median"
              + " %.2f GB/s, best %.2f GB/s; bytes identical to the fast Java ones; Java fast /"
              + " ggml C (medians) %.2fx%n",
          type,
          med,
          best,
          fast / med);
    }
    for (Path p : new Path[] {in, bin, dir.resolve("out.q8_0"), dir.resolve("out.q4_0"), dir}) {
      Files.deleteIfExists(p);
    }
  }

  private static byte[] run(
      String name,
      float[] x,
      int rows,
      int cols,
      int blockBytes,
      RowQuantizer fast,
      RowQuantizer ref,
      int rounds) {
    int rowBytes = cols / 32 * blockBytes;
    byte[] yFast = new byte[rows * rowBytes];
    byte[] yRef = new byte[rows * rowBytes];
    pass(fast, x, rows, cols, yFast, rowBytes);
    pass(ref, x, rows, cols, yRef, rowBytes);
    if (!Arrays.equals(yFast, yRef)) {
      throw new IllegalStateException(name + ": fast and reference bytes differ");
    }
    // Warm-up: at least 5 passes and 30M values, so that C2 has compiled both loops even when the
    // matrix is a single hot row.
    long warmPasses = Math.max(5, 30_000_000L / ((long) rows * cols));
    for (long w = 0; w < warmPasses; w++) {
      pass(fast, x, rows, cols, yFast, rowBytes);
      pass(ref, x, rows, cols, yRef, rowBytes);
    }
    double[] fastGbs = new double[rounds];
    double[] refGbs = new double[rounds];
    for (int i = 0; i < rounds; i++) { // alternate who goes first so neither gets a steady edge
      if ((i & 1) == 0) {
        fastGbs[i] = pass(fast, x, rows, cols, yFast, rowBytes);
        refGbs[i] = pass(ref, x, rows, cols, yRef, rowBytes);
      } else {
        refGbs[i] = pass(ref, x, rows, cols, yRef, rowBytes);
        fastGbs[i] = pass(fast, x, rows, cols, yFast, rowBytes);
      }
    }
    Arrays.sort(fastGbs);
    Arrays.sort(refGbs);
    double fMed = fastGbs[rounds / 2];
    double rMed = refGbs[rounds / 2];
    System.out.printf(
        "%s  median: fast %.2f GB/s, reference %.2f GB/s, ratio %.2fx   best: fast %.2f GB/s,"
            + " reference %.2f GB/s, ratio %.2fx%n",
        name,
        fMed,
        rMed,
        fMed / rMed,
        fastGbs[rounds - 1],
        refGbs[rounds - 1],
        fastGbs[rounds - 1] / refGbs[rounds - 1]);
    FAST_MEDIANS.put(name, fMed);
    return yFast;
  }

  /** One pass over all rows; returns GB/s of fp32 input. */
  private static double pass(
      RowQuantizer q, float[] x, int rows, int cols, byte[] y, int rowBytes) {
    long t0 = System.nanoTime();
    for (int row = 0; row < rows; row++) {
      q.quantize(x, row * cols, cols, y, row * rowBytes);
    }
    long t1 = System.nanoTime();
    return (double) rows * cols * 4 / (t1 - t0);
  }
}
