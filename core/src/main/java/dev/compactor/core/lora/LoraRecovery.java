package dev.compactor.core.lora;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.core.distill.DistillationDepth;
import dev.compactor.core.distill.DistillationLoss;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * LoRA recovery of a compressed model: a fresh adapter on the frozen compressed base is trained
 * with {@link Distiller} (KL to the original model plus cross-entropy, its schedule, checkpoints
 * and resume) on calibration windows, then written as a PEFT adapter directory and, if asked,
 * merged into the base.
 *
 * <p>Merging keeps a pruned base's sparsity: when the base has exact zeros in the adapted linears
 * and a merge is asked for, the adapter is trained masked ({@code W + M⊙(s·B·A)}), so the merged
 * weights have exactly the base's zeros. A quantized base cannot be merged without leaving its
 * grid: {@code merge} is refused there (the adapter itself is exported and loads over the base).
 */
public final class LoraRecovery {

  private static final Logger LOG = LoggerFactory.getLogger(LoraRecovery.class);

  /** The subdirectory of the output holding the PEFT adapter. */
  public static final String ADAPTER_DIR = "adapter";

  /** The subdirectory of the output holding the merged model. */
  public static final String MERGED_DIR = "merged";

  private static final int EVAL_BATCH = 8;

  private LoraRecovery() {}

  /** Mean per-token KL(original || model) and perplexity of the true next tokens. */
  public record Quality(double kl, double perplexity) {}

  /**
   * What a recovery did.
   *
   * @param before the compressed base on the held-out windows
   * @param after base + adapter on the same windows
   * @param teacher the original model on the same windows (KL 0; its perplexity is the target)
   * @param training the distiller's report
   * @param adapterParameters A and B elements in all
   * @param targets adapted linears
   * @param masked whether the delta was masked to the base's non-zeros
   * @param merged whether a merged model was written
   * @param mergedDType the merged model's storage type (null when not merged)
   * @param kept false when a checked run ({@link #runIfBetter}) wrote nothing because the adapter
   *     did not lower the held-out KL
   */
  public record Result(
      Quality before,
      Quality after,
      Quality teacher,
      DistillationReport training,
      long adapterParameters,
      int targets,
      boolean masked,
      boolean merged,
      DType mergedDType,
      boolean kept) {}

  /**
   * What quantization the model in a directory carries, from its {@code config.json}'s {@code
   * quantization_config} (empty for none or a sparsity-only compressed-tensors config).
   */
  public static Optional<String> quantization(JsonNode config) {
    JsonNode q = config.path("quantization_config");
    if (q.isMissingNode() || q.isNull()) {
      return Optional.empty();
    }
    String method = q.path("quant_method").asText("unknown");
    if (method.equals("compressed-tensors") && q.path("config_groups").size() == 0) {
      return Optional.empty();
    }
    return Optional.of(method);
  }

  /**
   * Trains an adapter on {@code baseDir} against {@code teacherDir} and writes it to {@code
   * outDir/adapter} (PEFT layout, {@code provenance} added to its compactor.json), and with {@code
   * merge} the merged model to {@code outDir/merged} in the base's dtype.
   *
   * @param train training windows of {@code seq + 1} tokens (the distiller's convention)
   * @param heldOut evaluation windows, same convention, for the before/after figures
   * @param scratch an empty directory for the run's checkpoints (a rerun with it resumes)
   */
  public static Result run(
      Path teacherDir,
      Path baseDir,
      Path outDir,
      LoraSpec spec,
      DistillationSpec distill,
      boolean merge,
      List<int[]> train,
      List<int[]> heldOut,
      Path scratch,
      Device device,
      ObjectNode provenance)
      throws IOException {
    return run(
        teacherDir,
        baseDir,
        outDir,
        spec,
        distill,
        merge,
        train,
        heldOut,
        new LocalCheckpointSink(scratch, 1),
        null,
        device,
        provenance,
        false);
  }

  /**
   * {@link #run} checked as {@link dev.compactor.core.prune.PruningRecovery#recoverIfBetter} checks
   * a recovery: the adapter (and the merged model) is written only when base + adapter is closer to
   * the teacher on {@code heldOut} than the base was (lower mean KL); otherwise nothing is written
   * and the result says {@code kept = false}. Checkpoints go to {@code sink} (a rerun with the same
   * sink resumes); {@code progress} (may be null) is told after every step.
   */
  public static Result runIfBetter(
      Path teacherDir,
      Path baseDir,
      Path outDir,
      LoraSpec spec,
      DistillationSpec distill,
      boolean merge,
      List<int[]> train,
      List<int[]> heldOut,
      CheckpointSink sink,
      Distiller.Progress progress,
      Device device,
      ObjectNode provenance)
      throws IOException {
    return run(
        teacherDir,
        baseDir,
        outDir,
        spec,
        distill,
        merge,
        train,
        heldOut,
        sink,
        progress,
        device,
        provenance,
        true);
  }

  private static Result run(
      Path teacherDir,
      Path baseDir,
      Path outDir,
      LoraSpec spec,
      DistillationSpec distill,
      boolean merge,
      List<int[]> train,
      List<int[]> heldOut,
      CheckpointSink sink,
      Distiller.Progress progress,
      Device device,
      ObjectNode provenance,
      boolean onlyIfBetter)
      throws IOException {
    ModelDirectory baseFiles = ModelDirectory.open(baseDir);
    JsonNode config = baseFiles.configJson();
    Optional<String> quantized = quantization(config);
    if (quantized.isPresent() && quantized.get().equals("compressed-tensors")) {
      throw new UnsupportedOperationException(
          "not supported yet: training an adapter over a packed compressed-tensors checkpoint;"
              + " quantize with --export safetensors (dequantized weights, same grid values) and"
              + " train on that");
    }
    if (merge && quantized.isPresent()) {
      throw new UnsupportedOperationException(
          "not supported yet: merging an adapter into a quantized base (quant_method "
              + quantized.get()
              + "): the merged weights would leave the quantization grid; export the adapter"
              + " without --merge");
    }
    if (merge && config.path("quantization_config").path("sparsity_config").has("format")) {
      throw new UnsupportedOperationException(
          "not supported yet: merging into a sparse compressed-tensors checkpoint; merge into the"
              + " dense pruned model and re-export it");
    }
    DType storeAs = baseFiles.dominantDType();
    try (Transformer teacher = Transformer.load(teacherDir, device);
        Transformer base = Transformer.load(baseDir, device)) {
      boolean masked = merge && hasZeros(base, spec);
      if (masked) {
        LOG.info("the base has pruned zeros: training the delta masked to its non-zeros");
      }
      try (LoraAdapter adapter = LoraAdapter.create(base, spec, masked)) {
        AdaptedModel view = new AdaptedModel(base, adapter);
        Quality before = quality(teacher, base, heldOut);
        DistillationReport report =
            new Distiller(distill, sink, DistillationDepth.NONE, progress)
                .distill(teacher, adapter.trainable(base), train);
        Quality after = quality(teacher, view, heldOut);
        LOG.info(
            "LoRA r={} on {} linears: KL {} -> {}, ppl {} -> {}",
            spec.rank(),
            adapter.targets().size(),
            before.kl(),
            after.kl(),
            before.perplexity(),
            after.perplexity());
        Quality reference = quality(teacher, teacher, heldOut);
        if (onlyIfBetter && !(after.kl() < before.kl())) {
          return new Result(
              before,
              after,
              reference,
              report,
              adapter.parameterCount(),
              adapter.targets().size(),
              masked,
              false,
              null,
              false);
        }
        if (provenance != null) {
          provenance = provenance.deepCopy();
          ObjectNode figures = provenance.putObject("held_out");
          figures.put("windows", heldOut.size());
          figures.put("kl_before", before.kl());
          figures.put("kl_after", after.kl());
          figures.put("perplexity_before", before.perplexity());
          figures.put("perplexity_after", after.perplexity());
          figures.put("teacher_perplexity", reference.perplexity());
          figures.put("steps", report.totalSteps());
        }
        PeftAdapterFiles.write(
            adapter, outDir.resolve(ADAPTER_DIR), baseDir.toAbsolutePath().toString(), provenance);
        if (merge) {
          adapter.mergeInto(base);
          base.save(
              outDir.resolve(MERGED_DIR),
              storeAs,
              Map.of(
                  "compactor.lora.rank", Integer.toString(spec.rank()),
                  "compactor.lora.alpha", Float.toString(spec.alpha()),
                  "compactor.lora.delta",
                      masked ? PeftAdapterFiles.MASKED : PeftAdapterFiles.PLAIN));
          ModelDirectory.copyAuxiliaryFiles(baseDir, outDir.resolve(MERGED_DIR));
        }
        return new Result(
            before,
            after,
            reference,
            report,
            adapter.parameterCount(),
            adapter.targets().size(),
            masked,
            merge,
            merge ? storeAs : null,
            true);
      }
    }
  }

  /** Whether any linear {@code spec} targets holds an exact zero. */
  static boolean hasZeros(Transformer base, LoraSpec spec) {
    for (LoraAdapter.Target t : LoraAdapter.targets(base, spec.targets())) {
      NDArray w = base.parameters().get(base.layerPrefix(t.layer()) + t.tensor());
      try (NDManager m = NDManager.newBaseManager(w.getDevice())) {
        NDArray zero = m.zeros(new Shape());
        NDArray isZero = w.eq(zero);
        isZero.attach(m);
        NDArray any = isZero.any();
        any.attach(m);
        if (any.getBoolean()) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Mean per-token KL(teacher || model) at temperature 1 and the model's perplexity of the true
   * next tokens over {@code windows} ({@code seq + 1} tokens each).
   */
  public static Quality quality(CausalLM teacher, CausalLM model, List<int[]> windows) {
    int seq = windows.get(0).length - 1;
    double kl = 0;
    double nll = 0;
    long positions = 0;
    try (NDManager m = NDManager.newBaseManager();
        DistillationLoss loss = new DistillationLoss(m, 1f, 1f)) {
      for (int start = 0; start < windows.size(); start += EVAL_BATCH) {
        int n = Math.min(EVAL_BATCH, windows.size() - start);
        int[] in = new int[n * seq];
        int[] next = new int[n * seq];
        for (int b = 0; b < n; b++) {
          System.arraycopy(windows.get(start + b), 0, in, b * seq, seq);
          System.arraycopy(windows.get(start + b), 1, next, b * seq, seq);
        }
        try (NDManager batch = m.newSubManager()) {
          NDArray tokens = batch.create(in, new Shape(n, seq));
          NDArray t = teacher.logits(batch, tokens);
          NDArray s = model.logits(batch, tokens);
          DistillationLoss.Terms terms = loss.terms(s, t, batch.create(next, new Shape(n, seq)));
          kl += terms.kl().getFloat() * (double) n * seq;
          nll += terms.crossEntropy().getFloat() * (double) n * seq;
          positions += (long) n * seq;
        }
      }
    }
    return new Quality(kl / positions, Math.exp(nll / positions));
  }
}
