package dev.compactor.core.prune;

import dev.compactor.core.io.Bf16;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.Fp16;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.SparseBitmask;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.PruningReport.TensorSparsity;
import dev.compactor.core.prune.PruningSpec.LinearWeight;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.calib.LinearStats;
import dev.compactor.core.quant.export.CompressedTensorsScheme;
import dev.compactor.core.quant.export.CompressedTensorsWriter;
import dev.compactor.core.quant.export.QuantizedCheckpointWriter;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.export.SparseCheckpointWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SparseGPT on a whole Hugging Face model, sequentially as in the paper: {@link
 * CalibrationCollector} runs the calibration windows layer by layer (one decoder layer's weights
 * and the windows' hidden states in memory), each stage of a layer ({@link
 * LinearGroups#trueSequential}) is calibrated on the outputs of the already-pruned linears and
 * layers before it, and each targeted linear is pruned by {@link SparseGpt} from its inputs'
 * Hessian. A finished layer is written at once, its pruned weights in the checkpoint's own dtype
 * (the values the next layer was calibrated with are those rounded values), everything else copied
 * byte for byte; embeddings, final norm and head follow at the end.
 *
 * <p>A Mixtral expert with too few routed calibration tokens ({@link LinearGroups#minExpertTokens})
 * has no usable Hessian: it is pruned by magnitude with the same mask rule, and listed in {@link
 * PruningReport#expertTokens}. Calibration runs on the CPU.
 *
 * <p>With {@link PruningOutput#wbits} (joint sparsity + quantization) the kept weights are also
 * quantized in the sweep ({@link SparseGpt#withQuantization}); the dense directory then holds the
 * dequantized values and {@code compressed-tensors/} ({@link #COMPRESSED_TENSORS_DIR}) the codes,
 * pack-quantized, with a {@code sparsity_config} of format {@code dense}. Every decoder linear must
 * be targeted then, and mixtures of experts are refused (not supported yet).
 */
public final class SparseGptPruner {

  private static final Logger LOG = LoggerFactory.getLogger(SparseGptPruner.class);

  /** Where the joint-quantization run puts its compressed-tensors checkpoint. */
  public static final String COMPRESSED_TENSORS_DIR = "compressed-tensors";

  private final PruningSpec spec;
  private final SparseGpt sparseGpt;
  private final PruningOutput output;

  public SparseGptPruner(PruningSpec spec) {
    this(spec, PruningOutput.DENSE);
  }

  /**
   * @param output only its {@code wbits}, group size and symmetry matter here (a sparse format is
   *     written by {@link Pruning#run} afterwards)
   */
  public SparseGptPruner(PruningSpec spec, PruningOutput output) {
    if (spec.method() != PruningSpec.Method.SPARSEGPT) {
      throw new IllegalArgumentException(
          "SparseGptPruner runs method sparsegpt, the spec asks for " + spec.method());
    }
    output.check(spec);
    if (output.wbits() != 0 && !spec.linears().equals(EnumSet.allOf(PruningSpec.Linear.class))) {
      throw new UnsupportedOperationException(
          "not supported yet: wbits with a subset of linears "
              + spec.linears()
              + " (the compressed-tensors export quantizes every decoder linear)");
    }
    this.spec = spec;
    this.output = output;
    SparseGpt s = SparseGpt.of(spec);
    this.sparseGpt =
        output.wbits() == 0
            ? s
            : s.withQuantization(output.wbits(), output.symmetric(), output.groupSize());
  }

  /**
   * Calibrates on {@code windows} (token ids, one length) in batches of {@code batchSize} and
   * prunes {@code inputDir} into {@code outputDir} (absent or empty).
   */
  public PruningReport prune(Path inputDir, Path outputDir, List<int[]> windows, int batchSize)
      throws IOException {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("SparseGPT needs calibration text, found no windows");
    }
    if (Files.exists(outputDir) && !PruningPipeline.isEmptyDir(outputDir)) {
      throw new IOException("output directory " + outputDir + " must be empty or absent");
    }
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig config = ModelConfig.read(inputDir);
    List<TensorSparsity> pruned = new ArrayList<>();
    Set<String> written = new HashSet<>();
    CalibrationCollector collector;
    int copied = 0;
    boolean joint = output.wbits() != 0;
    if (joint && config.moe()) {
      throw new UnsupportedOperationException(
          "not supported yet: wbits on "
              + config.modelType()
              + " (compressed-tensors export of mixture-of-experts layers)");
    }
    Path ctDir = outputDir.resolve(COMPRESSED_TENSORS_DIR);
    try (TensorSource src = model.weights()) {
      PruningPipeline.requireTargets(src, spec, config, inputDir);
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      PruningPipeline.describe(spec, metadata);
      if (joint) {
        metadata.put("compactor.prune.wbits", Integer.toString(output.wbits()));
        metadata.put("compactor.prune.group_size", Integer.toString(output.groupSize()));
        metadata.put("compactor.prune.symmetric", Boolean.toString(output.symmetric()));
      }
      collector =
          new CalibrationCollector(
              config,
              i -> LinearGroups.trueSequential(config, i),
              CalibrationCollector.Propagation.QUANTIZED,
              true,
              batchSize);
      DType floatType = model.dominantDType();
      if (floatType != DType.F16 && floatType != DType.BF16) {
        floatType = DType.F32;
      }
      try (SafetensorsWriter out =
              new SafetensorsWriter(outputDir, PruningPipeline.MAX_SHARD_BYTES, metadata);
          CompressedTensorsWriter ct =
              joint
                  ? new CompressedTensorsWriter(
                      ctDir,
                      new CompressedTensorsScheme(
                          CompressedTensorsScheme.Format.PACK_QUANTIZED,
                          output.wbits(),
                          output.symmetric(),
                          output.groupSize(),
                          null),
                      floatType,
                      metadata)
                  : null) {
        QuantizedCheckpointWriter ctSink =
            ct == null ? null : new QuantizedCheckpointWriter(config, ct);
        collector.run(src, windows, new LayerPruner(config, src, out, pruned, written, ctSink));
        for (String name : src.names()) {
          if (written.add(name)) {
            out.copy(src, name);
          }
        }
        copied = written.size() - pruned.size();
        if (ctSink != null) {
          long zeros = 0;
          for (TensorSparsity t : pruned) {
            zeros += t.zeros();
          }
          ctSink.finish(
              src,
              inputDir,
              ctDir,
              SparseCheckpointWriter.sparsityConfig(
                  "dense",
                  spec.pattern() != null && spec.pattern().n() == 2 && spec.pattern().m() == 4
                      ? SparseBitmask.Structure.TWO_FOUR
                      : SparseBitmask.Structure.UNSTRUCTURED,
                  (double) zeros / model.parameterCount()));
        }
      }
    }
    Files.copy(
        model.path().resolve(ModelDirectory.CONFIG), outputDir.resolve(ModelDirectory.CONFIG));
    model.copyAuxiliaryFilesTo(outputDir);
    long tokens = (long) windows.size() * windows.get(0).length;
    PruningReport report =
        new PruningReport(
            spec.method(),
            spec.sparsity(),
            spec.granularity(),
            pruned,
            copied,
            tokens,
            config.moe() ? collector.expertTokens() : List.of(),
            spec.pattern());
    LOG.info(
        "SparseGPT pruned {} tensors of {} to overall sparsity {} (target {}{}), copied {}",
        pruned.size(),
        inputDir,
        String.format("%.4f", report.overallSparsity()),
        spec.sparsity(),
        spec.pattern() == null ? "" : ", pattern " + spec.pattern(),
        copied);
    return report;
  }

  /** Prunes each stage's targeted linears in place and writes each finished layer. */
  private final class LayerPruner implements LayerQuantizer {
    private final ModelConfig config;
    private final TensorSource src;
    private final SafetensorsWriter out;
    private final List<TensorSparsity> pruned;
    private final Set<String> written;
    private final Map<String, BitSet> masks = new LinkedHashMap<>();
    private final QuantizedCheckpointWriter ctSink;
    private final Map<String, QuantizedLinear> quantized = new LinkedHashMap<>();

    LayerPruner(
        ModelConfig config,
        TensorSource src,
        SafetensorsWriter out,
        List<TensorSparsity> pruned,
        Set<String> written,
        QuantizedCheckpointWriter ctSink) {
      this.config = config;
      this.src = src;
      this.out = out;
      this.pruned = pruned;
      this.written = written;
      this.ctSink = ctSink;
    }

    @Override
    public void quantize(
        int layer,
        List<String> linears,
        Map<String, float[]> weights,
        Map<String, LinearStats> stats)
        throws IOException {
      String prefix = Layout.layerPrefix(config, "", layer);
      for (String linear : linears) {
        String tensor = prefix + linear + ".weight";
        Optional<LinearWeight> target = spec.target(config, tensor);
        if (target.isEmpty()) {
          continue;
        }
        TensorInfo info = src.info(tensor);
        if (info.shape().length != 2 || !info.dtype().isFloat()) {
          throw new CheckpointFormatException(
              "linear weight '" + tensor + "' must be a 2-D float tensor, found " + info);
        }
        int rows = (int) info.shape()[0];
        int cols = (int) info.shape()[1];
        float[] w = weights.get(linear + ".weight");
        LinearStats s = stats.get(linear);
        float[] result;
        BitSet mask;
        if (s.calibrated()) {
          SparseGpt.Result r = sparseGpt.pruneConsuming(w, rows, cols, s.hessian());
          result = r.weight();
          mask = r.mask();
          if (ctSink != null) {
            quantized.put(linear, r.quantized());
          }
          LOG.debug("SparseGPT layer {} {}: loss {}", layer, linear, r.loss());
        } else {
          if (ctSink != null) {
            throw new IllegalStateException(
                "layer " + layer + " " + linear + ": no calibration tokens to quantize with");
          }
          LOG.warn(
              "layer {} {}: {} routed calibration tokens; pruned by magnitude",
              layer,
              linear,
              s.tokens());
          float[] abs = new float[w.length];
          for (int i = 0; i < w.length; i++) {
            abs[i] = Math.abs(w[i]);
          }
          mask =
              spec.pattern() != null
                  ? MaskSelection.selectNm(abs, rows, cols, spec.pattern())
                  : MaskSelection.select(abs, rows, cols, spec.sparsity(), spec.granularity());
          result = w.clone();
          for (int i = mask.nextSetBit(0); i >= 0; i = mask.nextSetBit(i + 1)) {
            result[i] = 0f;
          }
        }
        roundTo(info.dtype(), result);
        weights.put(linear + ".weight", result);
        masks.put(tensor, mask);
      }
    }

    @Override
    public void layerDone(int layer, Map<String, float[]> weights) throws IOException {
      String prefix = Layout.layerPrefix(config, "", layer);
      for (String name : src.names()) {
        if (!name.startsWith(prefix) || !written.add(name)) {
          continue;
        }
        BitSet mask = masks.remove(name);
        if (mask == null) {
          out.copy(src, name);
          continue;
        }
        TensorInfo info = src.info(name);
        float[] values = weights.get(name.substring(prefix.length()));
        // already rounded to the dtype by roundTo, so this conversion is exact
        out.write(name, info.dtype(), info.shape(), values);
        long zeros = 0;
        for (float v : values) {
          zeros += v == 0f ? 1 : 0;
        }
        pruned.add(new TensorSparsity(name, values.length, mask.cardinality(), zeros));
      }
      if (!masks.isEmpty()) {
        throw new IllegalStateException("pruned tensors not in the checkpoint: " + masks.keySet());
      }
      if (ctSink != null) {
        ctSink.accept(layer, weights, quantized);
        quantized.clear();
      }
    }
  }

  /** Rounds {@code values} to what {@code dtype} stores (zeros stay zeros), in place. */
  public static void roundTo(DType dtype, float[] values) {
    switch (dtype) {
      case F32 -> {}
      case BF16 -> {
        for (int i = 0; i < values.length; i++) {
          values[i] = Bf16.toFloat(Bf16.fromFloat(values[i]));
        }
      }
      case F16 -> {
        for (int i = 0; i < values.length; i++) {
          values[i] = Fp16.toFloat(Fp16.fromFloat(values[i]));
        }
      }
      default ->
          throw new UnsupportedOperationException(
              "not supported yet: SparseGPT on " + dtype + " weights");
    }
  }
}
