package dev.compactor.core.factorize;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.quant.calib.CalibrationCollector;
import dev.compactor.core.quant.calib.LayerQuantizer;
import dev.compactor.core.quant.calib.LinearGroups;
import dev.compactor.core.quant.calib.LinearStats;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Factorizes the decoder linears of a Hugging Face model directory into low-rank pairs ({@link
 * LowRankFactorizer}) and writes the result, one layer in memory at a time.
 *
 * <p>Plain SVD reads each layer's weights and factorizes them. SVD-LLM calibrates layer by layer
 * through {@link CalibrationCollector} in GPTQ's true-sequential order with {@link
 * CalibrationCollector.Propagation#QUANTIZED}: every linear's Gram matrix comes from inputs
 * computed by the already-factorized linears before it, in its own layer and the earlier ones.
 *
 * <p>Output: a linear {@code X} that was factorized is stored as {@code X.v.weight} {@code [r, in]}
 * and {@code X.u.weight} {@code [out, r]} (bias, if any, stays {@code X.bias}) and named with its
 * rank in config.json's {@value ModelConfig#LOW_RANK}; with {@code merge} it is stored as the dense
 * product {@code X.weight = u v} and the config is unchanged. Factors keep the input weight's
 * storage type (F32, F16 or BF16); every other tensor is copied byte for byte; tokenizer files are
 * copied.
 *
 * <p>Dense Llama-family models only (Llama, Mistral, Qwen2, Qwen3, Phi-3): GPT-2, mixtures of
 * experts, MoEfied and already factorized models are refused.
 */
public final class Factorization {

  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  /** Windows per layer pass of the SVD-LLM calibration (as GPTQ's). */
  static final int BATCH = 4;

  /** Called after each decoder layer is written. */
  public interface Progress {
    void layerDone(int layer, int layers, List<FactorizationReport.Matrix> matrices);
  }

  private Factorization() {}

  /** Refuses what this factorization does not handle, saying what it found. */
  public static void requireSupported(ModelConfig c) {
    if (c.factorized()) {
      throw new UnsupportedOperationException(
          "not supported: factorizing an already factorized model ("
              + ModelConfig.LOW_RANK
              + " is set); factorize its --merge output or the original");
    }
    if (c.family() == ModelConfig.Family.GPT2 || c.moe() || c.moefied()) {
      throw new UnsupportedOperationException(
          "not supported yet: factorizing "
              + c.modelType()
              + (c.moefied() ? " with " + ModelConfig.MOEFICATION : "")
              + " (only dense Llama-family decoders)");
    }
  }

  /**
   * Factorizes {@code inputDir} into {@code outputDir} (absent or empty). {@code calibration}
   * supplies SVD-LLM's token windows (equal length); plain SVD never calls it.
   */
  public static FactorizationReport run(
      FactorizeSpec spec,
      Path inputDir,
      Path outputDir,
      Supplier<List<int[]>> calibration,
      Progress progress)
      throws IOException {
    return run(spec, inputDir, outputDir, calibration, progress, Map.of());
  }

  /**
   * {@link #run(FactorizeSpec, Path, Path, Supplier, Progress)}, adding {@code provenance} (e.g.
   * the calibration text a pipeline step used) to the safetensors metadata beside {@code
   * compactor.factorize.*}.
   */
  public static FactorizationReport run(
      FactorizeSpec spec,
      Path inputDir,
      Path outputDir,
      Supplier<List<int[]>> calibration,
      Progress progress,
      Map<String, String> provenance)
      throws IOException {
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    requireSupported(c);
    List<List<String>> chosen = chosen(c, spec);
    if (Files.exists(outputDir)) {
      try (var entries = Files.list(outputDir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("output directory " + outputDir + " must be empty or absent");
        }
      }
    }
    try {
      return write(spec, model, c, chosen, outputDir, calibration, progress, provenance);
    } catch (IOException | RuntimeException e) {
      // the writer publishes what it has on close; a model without all its layers must not stay
      dev.compactor.core.prune.Pruning.deleteTree(outputDir);
      throw e;
    }
  }

  private static FactorizationReport write(
      FactorizeSpec spec,
      ModelDirectory model,
      ModelConfig c,
      List<List<String>> chosen,
      Path outputDir,
      Supplier<List<int[]>> calibration,
      Progress progress,
      Map<String, String> provenance)
      throws IOException {
    List<FactorizationReport.Matrix> matrices = new ArrayList<>();
    Map<String, Integer> ranks = new LinkedHashMap<>();
    long[] tokens = new long[1];
    try (TensorSource src = model.weights()) {
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.put("compactor.factorize.method", spec.method().key());
      metadata.put("compactor.factorize.rule", spec.rule().toString());
      metadata.put("compactor.factorize.merged", Boolean.toString(spec.merge()));
      metadata.putAll(provenance);
      try (SafetensorsWriter out = new SafetensorsWriter(outputDir, MAX_SHARD_BYTES, metadata)) {
        for (Layout.Spec s : Layout.globals(c, "")) {
          out.copy(src, s.name());
        }
        LayerWriter writer = new LayerWriter(c, spec, src, out, matrices, ranks, progress, chosen);
        if (spec.method() == FactorizeSpec.Method.SVD) {
          for (int i = 0; i < c.numLayers(); i++) {
            Map<String, LowRankFactorizer.Factors> factors = new LinkedHashMap<>();
            for (String linear : chosen.get(i)) {
              String name = Layout.layerPrefix(c, "", i) + linear + ".weight";
              int[] shape = LinearGroups.shape(c, i, linear);
              float[] w = src.readFloats(name);
              factors.put(linear, LowRankFactorizer.plain(w, shape[0], shape[1], spec.rule()));
            }
            writer.write(i, factors);
          }
        } else {
          List<int[]> windows = calibration.get();
          if (windows.isEmpty()) {
            throw new IllegalArgumentException("svd_llm needs at least one calibration window");
          }
          tokens[0] = (long) windows.size() * windows.get(0).length;
          new CalibrationCollector(
                  c,
                  i -> stages(c, i, chosen.get(i)),
                  CalibrationCollector.Propagation.QUANTIZED,
                  true,
                  BATCH)
              .run(src, windows, writer);
        }
      }
    }
    ObjectNode config = (ObjectNode) model.configJson().deepCopy();
    if (!spec.merge() && !ranks.isEmpty()) {
      ObjectNode r = config.putObject(ModelConfig.LOW_RANK);
      ranks.forEach(r::put);
    }
    ModelDirectory.writeConfig(outputDir, config);
    model.copyAuxiliaryFilesTo(outputDir);
    long before = 0;
    for (Layout.Spec s : Layout.globals(c, "")) {
      before += numel(s.shape());
    }
    for (int i = 0; i < c.numLayers(); i++) {
      for (Layout.Spec s : Layout.layer(c, i)) {
        before += numel(s.shape());
      }
    }
    long macsBefore = 0;
    long macsAfter = 0;
    for (int i = 0; i < c.numLayers(); i++) {
      for (String linear : Layout.linears(c, i)) {
        int[] shape = LinearGroups.shape(c, i, linear);
        long dense = (long) shape[0] * shape[1];
        macsBefore += dense;
        int r = ranks.getOrDefault(Layout.layerPrefix(c, "", i) + linear, 0);
        macsAfter += r == 0 ? dense : (long) r * (shape[0] + shape[1]);
      }
    }
    long after = before - macsBefore + macsAfter;
    return new FactorizationReport(
        spec.method().key(),
        spec.rule(),
        spec.merge(),
        matrices,
        before,
        after,
        macsBefore,
        macsAfter,
        tokens[0]);
  }

  /** Per layer, the selected linears (in forward order); a selector matching none is an error. */
  static List<List<String>> chosen(ModelConfig c, FactorizeSpec spec) {
    List<List<String>> out = new ArrayList<>();
    java.util.Set<String> used = new java.util.HashSet<>();
    for (int i = 0; i < c.numLayers(); i++) {
      List<String> layer = new ArrayList<>();
      for (String linear : Layout.linears(c, i)) {
        if (spec.selects(linear)) {
          layer.add(linear);
          used.add(linear);
          used.add(linear.substring(linear.lastIndexOf('.') + 1));
        }
      }
      out.add(List.copyOf(layer));
    }
    for (String l : spec.linears()) {
      if (!used.contains(l)) {
        throw new IllegalArgumentException(
            "linears: no decoder linear is called '"
                + l
                + "'; expected among "
                + Layout.linears(c, 0));
      }
    }
    return out;
  }

  /** GPTQ's true-sequential stages restricted to the selected linears. */
  private static List<List<String>> stages(ModelConfig c, int layer, List<String> selected) {
    List<List<String>> out = new ArrayList<>();
    for (List<String> stage : LinearGroups.trueSequential(c, layer)) {
      List<String> kept = stage.stream().filter(selected::contains).toList();
      if (!kept.isEmpty()) {
        out.add(kept);
      }
    }
    return out;
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /**
   * Writes one layer once its linears are factorized; as a {@link LayerQuantizer} it factorizes
   * SVD-LLM's stages from their Gram matrices and puts {@code u v} into the collector's weights, so
   * later stages and layers calibrate on the factorized model.
   */
  private static final class LayerWriter implements LayerQuantizer {
    private final ModelConfig c;
    private final FactorizeSpec spec;
    private final TensorSource src;
    private final SafetensorsWriter out;
    private final List<FactorizationReport.Matrix> matrices;
    private final Map<String, Integer> ranks;
    private final Progress progress;
    private final List<List<String>> chosen;
    private final Map<String, LowRankFactorizer.Factors> pending = new LinkedHashMap<>();

    LayerWriter(
        ModelConfig c,
        FactorizeSpec spec,
        TensorSource src,
        SafetensorsWriter out,
        List<FactorizationReport.Matrix> matrices,
        Map<String, Integer> ranks,
        Progress progress,
        List<List<String>> chosen) {
      this.c = c;
      this.spec = spec;
      this.src = src;
      this.out = out;
      this.matrices = matrices;
      this.ranks = ranks;
      this.progress = progress;
      this.chosen = chosen;
    }

    @Override
    public void quantize(
        int layer,
        List<String> linears,
        Map<String, float[]> weights,
        Map<String, LinearStats> stats) {
      for (String linear : linears) {
        int[] shape = LinearGroups.shape(c, layer, linear);
        LowRankFactorizer.Factors f =
            LowRankFactorizer.whitened(
                weights.get(linear + ".weight"),
                shape[0],
                shape[1],
                stats.get(linear).gram(),
                spec.rule());
        if (!f.dense()) {
          weights.put(
              linear + ".weight",
              LowRankFactorizer.product(f.u(), f.v(), shape[0], f.rank(), shape[1]));
        }
        pending.put(linear, f);
      }
    }

    @Override
    public void layerDone(int layer, Map<String, float[]> weights) throws IOException {
      write(layer, pending);
      pending.clear();
    }

    void write(int layer, Map<String, LowRankFactorizer.Factors> factors) throws IOException {
      String prefix = Layout.layerPrefix(c, "", layer);
      List<FactorizationReport.Matrix> done = new ArrayList<>();
      for (Layout.Spec s : Layout.layer(c, layer)) {
        String name = s.name();
        String linear =
            name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
        LowRankFactorizer.Factors f = linear == null ? null : factors.get(linear);
        if (f == null) {
          out.copy(src, prefix + name);
          continue;
        }
        int o = (int) s.shape()[0];
        int in = (int) s.shape()[1];
        done.add(
            new FactorizationReport.Matrix(
                prefix + linear, o, in, f.rank(), f.energy(), f.damping()));
        DType dtype = storage(src.info(prefix + name));
        if (f.dense()) {
          out.copy(src, prefix + name);
        } else if (spec.merge()) {
          out.write(
              prefix + name,
              dtype,
              s.shape(),
              LowRankFactorizer.product(f.u(), f.v(), o, f.rank(), in));
        } else {
          out.write(prefix + linear + ".v.weight", dtype, new long[] {f.rank(), in}, f.v());
          out.write(prefix + linear + ".u.weight", dtype, new long[] {o, f.rank()}, f.u());
          ranks.put(prefix + linear, f.rank());
        }
      }
      matrices.addAll(done);
      if (chosen.get(layer).size() != done.size()) {
        throw new IllegalStateException(
            "layer " + layer + ": factorized " + done.size() + " of " + chosen.get(layer).size());
      }
      if (progress != null) {
        progress.layerDone(layer, c.numLayers(), done);
      }
    }

    private static DType storage(TensorInfo t) {
      DType d = t.dtype();
      return d == DType.F16 || d == DType.BF16 ? d : DType.F32;
    }
  }
}
