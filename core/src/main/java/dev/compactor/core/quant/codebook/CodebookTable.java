package dev.compactor.core.quant.codebook;

import ai.djl.Device;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.DequantizedCheckpointSink;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.QualityTable;
import dev.compactor.core.quant.table.WeightQuantization;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Codebook quantization against uniform grids at equal bits on one model and one text: RTN and GPTQ
 * int4 (group of 128 or the largest that fits, asymmetric) against codebook 4-bit with each
 * sensitivity, and RTN int3 (the same grid with 8 levels, fake-quantized here since {@link
 * WeightQuantization} stores 4 and 8 bits only) against codebook 3-bit. Each row: perplexity, KL
 * divergence and top-1 agreement against the unquantized model, and its size: codebook rows as
 * written on disk (the safetensors files), uniform rows as they would be stored (packed codes, F16
 * scales, packed zero points) plus the unquantized tensors.
 */
public final class CodebookTable {

  /**
   * One measured row.
   *
   * @param bytes size of all tensors as stored
   * @param bitsPerWeight stored bits per decoder-linear weight, scales or codebooks included
   * @param seconds time to quantize
   */
  public record Row(
      String name, DivergenceResult result, long bytes, double bitsPerWeight, double seconds) {

    /** Relative perplexity increase over the baseline, in percent. */
    public double deltaPplPercent() {
      return 100 * (result.modelPerplexity() / result.baselinePerplexity() - 1);
    }
  }

  private final Path model;
  private final Path work;
  private final int[] tokens;
  private final List<int[]> calibration;
  private final int seqLen;
  private final int group;

  /**
   * @param work empty scratch directory
   * @param tokens held-out evaluation tokens
   * @param calibration GPTQ and sensitivity windows
   */
  public CodebookTable(Path model, Path work, int[] tokens, List<int[]> calibration, int seqLen)
      throws IOException {
    this.model = model;
    this.work = work;
    this.tokens = tokens;
    this.calibration = calibration;
    this.seqLen = seqLen;
    this.group = QualityTable.largestGroup(ModelConfig.read(model));
  }

  /** Group size of the uniform rows. */
  public int groupSize() {
    return group;
  }

  /** Runs every row, reporting each finished one to {@code progress}. */
  public List<Row> run(ProgressListener progress) throws IOException {
    return run(progress, r -> {});
  }

  /** Runs every row, handing each to {@code onRow} as soon as it is measured. */
  public List<Row> run(ProgressListener progress, Consumer<Row> onRow) throws IOException {
    List<CodebookSettings> codebooks = new ArrayList<>();
    for (int bits : new int[] {4, 3}) {
      for (Sensitivity s : List.of(Sensitivity.FISHER, Sensitivity.UNIFORM, Sensitivity.HESSIAN)) {
        codebooks.add(new CodebookSettings(bits, s));
      }
    }
    codebooks.add(
        new CodebookSettings(
            3, Sensitivity.FISHER, CodebookSettings.DEFAULT_MAX_ITERATIONS, false));
    int total = 4 + codebooks.size();
    int done = 0;
    List<Row> rows =
        new ArrayList<>() {
          @Override
          public boolean add(Row r) {
            onRow.accept(r);
            return super.add(r);
          }
        };
    Map<String, float[]> fisher = null;
    double fisherSeconds = 0;
    ModelDirectory source = ModelDirectory.open(model);
    long linearBytes = 0;
    long linearParams = 0;
    try (TensorSource src = Checkpoints.open(model)) {
      for (String n : src.names()) {
        if (LayerwiseQuantizer.isDecoderLinear(n)) {
          linearBytes += src.info(n).byteLength();
          linearParams += src.info(n).numel();
        }
      }
    }
    // every row is scored against the baseline on the same windows: its logits are computed once
    try (Transformer loaded = Transformer.load(model, Device.cpu());
        MemoizedLogits base = MemoizedLogits.of(loaded)) {
      rows.add(
          new Row(
              "unquantized (baseline)",
              score(base, model),
              source.totalWeightBytes(),
              8.0 * linearBytes / linearParams,
              0));
      progress.onProgress("codebook table", ++done, total);
      for (WeightQuantization q :
          List.of(
              new WeightQuantization(WeightQuantization.Method.RTN, 4, group),
              new WeightQuantization(WeightQuantization.Method.GPTQ, 4, group))) {
        long t0 = System.nanoTime();
        Path dir = work.resolve(q.method().id() + q.bits());
        LayerwiseQuantizer.Summary s;
        try (DequantizedCheckpointSink sink = new DequantizedCheckpointSink(model, dir, Map.of())) {
          s = LayerwiseQuantizer.run(model, q, calibration, sink, ProgressListener.NONE);
          sink.finish(DequantizedCheckpointSink.quantizationConfig(q, s), null);
        }
        double sec = (System.nanoTime() - t0) / 1e9;
        long bytes = source.totalWeightBytes() - linearBytes + s.quantizedLinearBytes();
        rows.add(new Row(q.label(), score(base, dir), bytes, s.bitsPerWeight(), sec));
        progress.onProgress("codebook table", ++done, total);
      }
      long t0 = System.nanoTime();
      Path rtn3 = work.resolve("rtn3");
      long[] rtn3Bits = writeRtn(model, rtn3, 3, group);
      double sec = (System.nanoTime() - t0) / 1e9;
      Row rtn3Row =
          new Row(
              "rtn int3 g" + group + " (fake-quantized)",
              score(base, rtn3),
              source.totalWeightBytes() - linearBytes + rtn3Bits[0] / 8,
              (double) rtn3Bits[0] / rtn3Bits[1],
              sec);
      progress.onProgress("codebook table", ++done, total);
      for (CodebookSettings c : codebooks) {
        if (c.bits() == 3 && rtn3Row != null) {
          rows.add(rtn3Row);
          rtn3Row = null;
        }
        long c0 = System.nanoTime();
        Path dir = work.resolve("cb" + c.bits() + c.sensitivity().id() + (c.exact() ? "" : "L"));
        Map<String, float[]> f = null;
        double fisherShare = 0;
        if (c.sensitivity() == Sensitivity.FISHER) {
          if (fisher == null) {
            long f0 = System.nanoTime();
            fisher = CodebookModelQuantizer.fisher(model, calibration, ProgressListener.NONE);
            fisherSeconds = (System.nanoTime() - f0) / 1e9;
          } else {
            // the Fisher diagonal is computed once and reused: charge each row its cost
            fisherShare = fisherSeconds;
          }
          f = fisher;
        }
        CodebookModelQuantizer.Summary s =
            CodebookModelQuantizer.run(
                model, c, calibration, f, dir, Map.of(), ProgressListener.NONE);
        double csec = (System.nanoTime() - c0) / 1e9 + fisherShare;
        rows.add(
            new Row(c.label(), score(base, dir), weightFileBytes(dir), s.bitsPerWeight(), csec));
        progress.onProgress("codebook table", ++done, total);
      }
    }
    return rows;
  }

  /** Bytes of the safetensors files in {@code dir}. */
  public static long weightFileBytes(Path dir) throws IOException {
    long bytes = 0;
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.safetensors")) {
      for (Path f : files) {
        bytes += Files.size(f);
      }
    }
    return bytes;
  }

  /**
   * Round to nearest on an asymmetric {@code bits}-bit grid per group of {@code group} input
   * columns (min and max taken with 0, scale {@code (max - min) / (2^bits - 1)}, zero point {@code
   * round(-min / scale)} clamped to the grid: {@code RtnQuantizer}'s asymmetric rule, which takes 4
   * and 8 bits only), written dequantized; returns the stored bits it would take (codes, F16
   * scales, {@code bits}-bit zero points) and the weights.
   */
  static long[] writeRtn(Path model, Path out, int bits, int group) throws IOException {
    ModelDirectory source = ModelDirectory.open(model);
    long storedBits = 0;
    long params = 0;
    try (TensorSource src = source.weights();
        SafetensorsWriter w = new SafetensorsWriter(out, 4L << 30, Map.of())) {
      for (String name : src.names()) {
        TensorInfo t = src.info(name);
        if (!LayerwiseQuantizer.isDecoderLinear(name)) {
          w.copy(src, name);
          continue;
        }
        int rows = (int) t.shape()[0];
        int cols = (int) t.shape()[1];
        int g = group == 0 ? cols : group;
        float[] v = src.readFloats(name);
        fakeQuantize(v, rows, cols, bits, g);
        DType d = t.dtype() == DType.F16 || t.dtype() == DType.BF16 ? t.dtype() : DType.F32;
        w.write(name, d, t.shape(), v);
        long groups = (long) rows * (cols / g);
        storedBits += (long) rows * cols * bits + groups * (16 + bits);
        params += (long) rows * cols;
      }
    }
    source.copyAuxiliaryFilesTo(out);
    ModelDirectory.writeConfig(out, source.configJson());
    return new long[] {storedBits, params};
  }

  /** In place: each group of {@code g} columns of each row rounded to its min/max grid. */
  static void fakeQuantize(float[] v, int rows, int cols, int bits, int g) {
    int qmax = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
      for (int c0 = 0; c0 < cols; c0 += g) {
        float lo = Float.POSITIVE_INFINITY;
        float hi = Float.NEGATIVE_INFINITY;
        for (int j = c0; j < c0 + g; j++) {
          lo = Math.min(lo, v[r * cols + j]);
          hi = Math.max(hi, v[r * cols + j]);
        }
        lo = Math.min(lo, 0);
        hi = Math.max(hi, 0);
        float scale = (hi - lo) / qmax;
        if (scale == 0) {
          continue;
        }
        int zero = Math.max(0, Math.min(qmax, (int) -Math.rint(lo / scale)));
        for (int j = c0; j < c0 + g; j++) {
          int q = Math.max(0, Math.min(qmax, (int) Math.rint(v[r * cols + j] / scale) + zero));
          v[r * cols + j] = (q - zero) * scale;
        }
      }
    }
  }

  private DivergenceResult score(CausalLM base, Path dir) throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      return new DivergenceEvaluator(seqLen, seqLen)
          .evaluate(base, m, tokens, ProgressListener.NONE);
    }
  }
}
