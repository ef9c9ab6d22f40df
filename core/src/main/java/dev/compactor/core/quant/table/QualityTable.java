package dev.compactor.core.quant.table;

import ai.djl.Device;
import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.MemoizedLogits;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Measures every quantization format this project writes on one model and one text, against the
 * unquantized model: perplexity, KL divergence and top-1 agreement of the next-token distributions,
 * and the size as stored. Every row is turned into a plain fp32 Hugging Face directory first (HF
 * formats dequantized by {@link DequantizedCheckpointSink}, GGUF files by {@link GgufToHf}), so one
 * evaluator scores them all and no external runtime is needed.
 */
public final class QualityTable {

  /**
   * One measured format.
   *
   * @param name row label
   * @param result divergence from the baseline (carries both perplexities)
   * @param bytes size as quantized: all tensors as stored (a GGUF row: the file)
   * @param bitsPerWeight stored bits per weight of the decoder linears
   * @param note what was special (fallback types, imatrix)
   */
  public record Row(
      String name, DivergenceResult result, long bytes, double bitsPerWeight, String note) {

    public double perplexity() {
      return result.modelPerplexity();
    }

    /** Relative perplexity increase over the baseline, in percent. */
    public double deltaPplPercent() {
      return 100 * (result.modelPerplexity() / result.baselinePerplexity() - 1);
    }
  }

  /**
   * The settings the table ran with.
   *
   * @param groupSize group of the int4 rows (128, or the largest that fits)
   * @param seqLen evaluation window
   * @param calibrationSamples GPTQ/AWQ windows
   */
  public record Setup(int groupSize, int seqLen, int calibrationSamples) {}

  private final Path model;
  private final Path work;
  private final int[] tokens;
  private final List<int[]> calibration;
  private final Setup setup;

  /**
   * @param model Llama-family HF directory (the fp32 baseline)
   * @param work empty scratch directory for the quantized copies
   * @param tokens evaluation tokens
   * @param calibration GPTQ/AWQ calibration windows
   * @param seqLen evaluation window length
   */
  public QualityTable(Path model, Path work, int[] tokens, List<int[]> calibration, int seqLen)
      throws IOException {
    this.model = model;
    this.work = work;
    this.tokens = tokens;
    this.calibration = calibration;
    this.setup = new Setup(largestGroup(ModelConfig.read(model)), seqLen, calibration.size());
  }

  public Setup setup() {
    return setup;
  }

  /** The largest of 128, 64, 32 dividing every linear's input width (0 if none does). */
  public static int largestGroup(ModelConfig c) {
    for (int g : new int[] {128, 64, 32}) {
      if (c.hiddenSize() % g == 0
          && c.intermediateSize() % g == 0
          && (c.numHeads() * c.headDim()) % g == 0) {
        return g;
      }
    }
    return 0;
  }

  /** Runs every row, reporting each finished row name to {@code progress}. */
  public List<Row> run(ProgressListener progress) throws IOException {
    int g = setup.groupSize();
    List<WeightQuantization> hf =
        List.of(
            new WeightQuantization(Method.RTN, 8, 0),
            new WeightQuantization(Method.RTN, 4, g),
            new WeightQuantization(Method.GPTQ, 4, g),
            new WeightQuantization(Method.AWQ, 4, g),
            new WeightQuantization(Method.FP8, 8, 0),
            new WeightQuantization(Method.NF4, 4, Math.min(64, g)));
    List<LlamaFileType> gguf =
        List.of(
            LlamaFileType.Q8_0,
            LlamaFileType.Q6_K,
            LlamaFileType.Q4_K_M,
            LlamaFileType.Q4_K_S,
            LlamaFileType.Q4_0);
    int total = 2 + hf.size() + gguf.size();
    int done = 0;
    List<Row> rows = new ArrayList<>();
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
              "fp32 (baseline)",
              score(base, model),
              source.totalWeightBytes(),
              8.0 * linearBytes / linearParams,
              ""));
      progress.onProgress("quality table", ++done, total);
      for (WeightQuantization q : hf) {
        Path dir = work.resolve(q.method().id() + q.bits() + "g" + q.groupSize());
        LayerwiseQuantizer.Summary s;
        try (DequantizedCheckpointSink sink = new DequantizedCheckpointSink(model, dir, Map.of())) {
          s = LayerwiseQuantizer.run(model, q, calibration, sink, ProgressListener.NONE);
          sink.finish(DequantizedCheckpointSink.quantizationConfig(q, s), null);
        }
        long bytes = source.totalWeightBytes() - linearBytes + s.quantizedLinearBytes();
        rows.add(new Row(label(q), score(base, dir), bytes, s.bitsPerWeight(), ""));
        progress.onProgress("quality table", ++done, total);
      }
      for (LlamaFileType t : gguf) {
        rows.add(ggufRow(base, t, Map.of(), "GGUF " + t.name()));
        progress.onProgress("quality table", ++done, total);
      }
      Map<String, GgmlType> matched = matchedQ4_0(ggufFile("GGUF " + LlamaFileType.Q4_K_M.name()));
      rows.add(ggufRow(base, LlamaFileType.Q4_0, matched, "GGUF Q4_0, Q4_K_M's other types"));
      progress.onProgress("quality table", ++done, total);
    }
    return rows;
  }

  /**
   * Q4_0 wherever the Q4_K_M file {@code q4km} holds Q4_K, and Q4_K_M's own type everywhere else
   * (its Q6_K layers, its Q5_0/Q8_0 fallbacks for short rows), so the two files differ only on the
   * tensors Q4_K_M quantizes to 4 bits and compare Q4_K with Q4_0 at equal size.
   */
  static Map<String, GgmlType> matchedQ4_0(Path q4km) throws IOException {
    Map<String, GgmlType> m = new TreeMap<>();
    try (GgufReader r = GgufReader.open(q4km)) {
      for (GgufTensorInfo info : r.tensors()) {
        if (info.shape().length == 2) {
          m.put(info.name(), info.type() == GgmlType.Q4_K ? GgmlType.Q4_0 : info.type());
        }
      }
    }
    return m;
  }

  private Path ggufFile(String rowName) {
    return work.resolve(rowName.replaceAll("[^A-Za-z0-9]+", "_") + ".gguf");
  }

  private Row ggufRow(CausalLM base, LlamaFileType t, Map<String, GgmlType> overrides, String name)
      throws IOException {
    String id = name.replaceAll("[^A-Za-z0-9]+", "_");
    Path file = ggufFile(name);
    GgufExport.export(model, t, overrides, Map.of(), file);
    Path dir = work.resolve(id);
    GgufToHf.Result r = GgufToHf.convert(file, model, dir);
    long bits = 0;
    long params = 0;
    Map<GgmlType, Integer> linearTypes = new TreeMap<>();
    try (GgufReader reader = GgufReader.open(file)) {
      for (var info : reader.tensors()) {
        if (info.name().startsWith("blk.") && info.shape().length == 2) {
          bits += 8 * info.byteSize();
          params += info.numel();
          linearTypes.merge(info.type(), 1, Integer::sum);
        }
      }
    }
    StringBuilder note = new StringBuilder("linears ");
    linearTypes.forEach((k, v) -> note.append(k).append('x').append(v).append(' '));
    note.append("| embd/out ").append(r.tensorTypes().get("token_embd.weight"));
    return new Row(name, score(base, dir), r.ggufBytes(), (double) bits / params, note.toString());
  }

  private DivergenceResult score(CausalLM base, Path dir) throws IOException {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      return new DivergenceEvaluator(setup.seqLen(), setup.seqLen())
          .evaluate(base, m, tokens, ProgressListener.NONE);
    }
  }

  private static String label(WeightQuantization q) {
    return switch (q.method()) {
      case RTN ->
          "RTN int" + q.bits() + (q.groupSize() == 0 ? " per-channel" : " g" + q.groupSize());
      case GPTQ -> "GPTQ int" + q.bits() + " g" + q.groupSize();
      case AWQ -> "AWQ int" + q.bits() + " g" + q.groupSize();
      case FP8 -> "FP8 E4M3 per-channel";
      case NF4 -> "NF4 block " + q.groupSize();
    };
  }
}
