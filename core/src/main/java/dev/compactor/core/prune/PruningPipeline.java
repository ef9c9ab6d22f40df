package dev.compactor.core.prune;

import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.prune.PruningReport.TensorSparsity;
import dev.compactor.core.prune.PruningSpec.LinearWeight;
import dev.compactor.core.quant.calib.ExpertTokens;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Streams a checkpoint tensor by tensor into a pruned copy: targeted linear weights are scored,
 * masked and written; everything else is copied byte for byte. Masking zeroes the bytes of the
 * pruned elements in the tensor's own dtype, so kept weights keep their exact bits (no fp32 round
 * trip for BF16/F16 checkpoints) and only one tensor is in memory at a time.
 */
final class PruningPipeline {

  private static final Logger LOG = LoggerFactory.getLogger(PruningPipeline.class);

  /** Hugging Face's default shard size, so large models come out sharded like the originals. */
  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  /** Scores one targeted weight ({@code [rows, cols]}, fp32); may reuse {@code weight}. */
  interface Scorer {
    float[] score(LinearWeight target, float[] weight, int rows, int cols) throws IOException;
  }

  private PruningPipeline() {}

  /**
   * @param experts filled by {@code scorer} while it runs (Wanda: the routed tokens of every expert
   *     it scored); copied into the report at the end
   */
  static PruningReport run(
      Path inputDir,
      Path outputDir,
      PruningSpec spec,
      Scorer scorer,
      long calibrationTokens,
      List<ExpertTokens> experts)
      throws IOException {
    if (Files.exists(outputDir) && !isEmptyDir(outputDir)) {
      throw new IOException("output directory " + outputDir + " must be empty or absent");
    }
    List<TensorSparsity> pruned = new ArrayList<>();
    int copied = 0;
    ModelDirectory model = ModelDirectory.open(inputDir);
    ModelConfig config = ModelConfig.read(inputDir);
    config.requireDenseLinears();
    try (TensorSource src = model.weights()) {
      requireTargets(src, spec, config, inputDir);
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      describe(spec, metadata);
      // Every tensor keeps its name, dtype and shape, so the writer knows the files up front and
      // writes the data once.
      List<SafetensorsWriter.Planned> plan = new ArrayList<>();
      for (String name : src.names()) {
        TensorInfo t = src.info(name);
        plan.add(new SafetensorsWriter.Planned(name, t.dtype(), t.shape()));
      }
      try (SafetensorsWriter out =
          SafetensorsWriter.planned(outputDir, MAX_SHARD_BYTES, metadata, plan)) {
        for (String name : src.names()) {
          var target = spec.target(config, name);
          if (target.isEmpty()) {
            out.copy(src, name);
            copied++;
            continue;
          }
          pruned.add(pruneOne(src, name, target.get(), spec, scorer, out));
        }
      }
    }
    // config.json is copied byte for byte: pruning changes no architecture field.
    Files.copy(
        model.path().resolve(ModelDirectory.CONFIG), outputDir.resolve(ModelDirectory.CONFIG));
    model.copyAuxiliaryFilesTo(outputDir);
    PruningReport report =
        new PruningReport(
            spec.method(),
            spec.sparsity(),
            spec.granularity(),
            pruned,
            copied,
            calibrationTokens,
            experts,
            spec.pattern());
    LOG.info(
        "pruned {} tensors of {} with {} to overall sparsity {} (target {}), copied {}",
        pruned.size(),
        inputDir,
        spec.method(),
        String.format("%.4f", report.overallSparsity()),
        spec.sparsity(),
        copied);
    return report;
  }

  /** The provenance strings every pruned checkpoint carries in its safetensors metadata. */
  static void describe(PruningSpec spec, Map<String, String> metadata) {
    metadata.put("compactor.prune.method", spec.method().name().toLowerCase());
    metadata.put("compactor.prune.sparsity", Double.toString(spec.sparsity()));
    metadata.put("compactor.prune.granularity", spec.granularity().name().toLowerCase());
    if (spec.pattern() != null) {
      metadata.put("compactor.prune.pattern", spec.pattern().toString());
    }
  }

  private static TensorSparsity pruneOne(
      TensorSource src,
      String name,
      LinearWeight target,
      PruningSpec spec,
      Scorer scorer,
      SafetensorsWriter out)
      throws IOException {
    TensorInfo info = src.info(name);
    long[] shape = info.shape();
    if (shape.length != 2 || !info.dtype().isFloat()) {
      throw new CheckpointFormatException(
          "linear weight '" + name + "' must be a 2-D float tensor, found " + info);
    }
    if (info.numel() > Integer.MAX_VALUE) {
      throw new CheckpointFormatException(
          "linear weight '" + name + "' has " + info.numel() + " elements, more than 2^31-1");
    }
    int rows = (int) shape[0];
    int cols = (int) shape[1];
    float[] scores = scorer.score(target, src.readFloats(name), rows, cols);
    BitSet mask =
        spec.pattern() != null
            ? MaskSelection.selectNm(scores, rows, cols, spec.pattern())
            : MaskSelection.select(scores, rows, cols, spec.sparsity(), spec.granularity());
    ByteBuffer masked = zeroMasked(src.raw(name), info.dtype(), mask);
    out.writeRaw(name, info.dtype(), shape, masked);
    return new TensorSparsity(name, info.numel(), mask.cardinality(), countZeros(masked, info));
  }

  /** A little-endian copy of {@code raw} with the bytes of every masked element set to zero. */
  static ByteBuffer zeroMasked(ByteBuffer raw, DType dtype, BitSet mask) {
    ByteBuffer copy = ByteBuffer.allocateDirect(raw.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    copy.put(raw.duplicate()).flip();
    int width = dtype.bytes();
    for (int i = mask.nextSetBit(0); i >= 0; i = mask.nextSetBit(i + 1)) {
      int at = i * width;
      for (int b = 0; b < width; b++) {
        copy.put(at + b, (byte) 0);
      }
    }
    return copy;
  }

  /** Elements equal to +0 or -0 (sign bit ignored), read in the stored dtype. */
  static long countZeros(ByteBuffer data, TensorInfo info) {
    ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long n = info.numel();
    long zeros = 0;
    for (int i = 0; i < n; i++) {
      boolean zero =
          switch (info.dtype()) {
            case F32 -> (b.getInt(i * 4) & 0x7fffffff) == 0;
            case F64 -> (b.getLong(i * 8) & 0x7fffffffffffffffL) == 0;
            case F16, BF16 -> (b.getShort(i * 2) & 0x7fff) == 0;
            default -> throw new IllegalArgumentException("not a float dtype: " + info.dtype());
          };
      if (zero) {
        zeros++;
      }
    }
    return zeros;
  }

  static void requireTargets(TensorSource src, PruningSpec spec, ModelConfig config, Path dir) {
    for (String name : src.names()) {
      if (spec.target(config, name).isPresent()) {
        return;
      }
    }
    throw new UnsupportedOperationException(
        "not supported yet: pruning "
            + dir
            + " ("
            + config.modelType()
            + "), which has no decoder linear weights to prune"
            + " (model.layers.N.{self_attn,mlp}.*_proj.weight or experts) among "
            + src.names().size()
            + " tensors");
  }

  static boolean isEmptyDir(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }
}
