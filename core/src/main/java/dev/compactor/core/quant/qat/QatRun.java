package dev.compactor.core.quant.qat;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.distill.CheckpointSink;
import dev.compactor.core.distill.DistillationReport;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.quant.export.QuantizedLinear;
import dev.compactor.core.quant.table.GgufExport;
import dev.compactor.core.quant.table.LayerwiseQuantizer;
import dev.compactor.core.quant.table.WeightQuantization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * One quantization-aware training run and its exports, the same for {@code compactor qat} and the
 * quantization service: the init (RTN or GPTQ) is quantized and written to a scratch directory, its
 * latent weights and steps are trained against the teacher, and the learned grid is written as
 * asked: dequantized safetensors (always), compressed-tensors pack-quantized and a GGUF Q4_0/Q8_0
 * file (4 and 8 bits only). The GGUF file is quantized by ggml's rule from the dequantized weights,
 * so only the fraction {@link Result#ggmlExactBlocks()} of its blocks keeps the learned step.
 */
public final class QatRun {

  private static final ObjectMapper JSON = new ObjectMapper();

  private QatRun() {}

  /**
   * What to write.
   *
   * @param dequantized the dequantized Hugging Face directory (required: evaluation and GGUF read
   *     it)
   * @param compressedTensors the compressed-tensors directory, or null
   * @param gguf Q4_0 (4 bits) or Q8_0 (8 bits), or null for none
   * @param ggufDir where {@code model-<type>.gguf} goes (needed with {@code gguf})
   */
  public record Outputs(
      Path dequantized, Path compressedTensors, LlamaFileType gguf, Path ggufDir) {
    public Outputs {
      if (dequantized == null) {
        throw new IllegalArgumentException("qat always writes the dequantized checkpoint");
      }
      if (gguf != null && ggufDir == null) {
        throw new IllegalArgumentException("a gguf export needs a directory");
      }
    }
  }

  /**
   * A run.
   *
   * @param model the source (and teacher) Hugging Face directory
   * @param init RTN or GPTQ, symmetric: the grid trained, and where training starts
   * @param calibration GPTQ's calibration windows (unused by RTN)
   * @param train training windows of {@code seq + 1} tokens
   * @param spec the distillation settings (loss, steps, batch, learning rate)
   * @param outputs what to write
   */
  public record Request(
      Path model,
      WeightQuantization init,
      List<int[]> calibration,
      List<int[]> train,
      DistillationSpec spec,
      Outputs outputs) {
    public Request {
      calibration = List.copyOf(calibration);
      train = List.copyOf(train);
      checkExports(init.bits(), outputs.compressedTensors() != null, outputs.gguf());
      if (train.isEmpty()) {
        throw new IllegalArgumentException("qat needs training windows, found none");
      }
    }
  }

  /**
   * Refuses exports of a grid no runtime format here stores (2 and 3 bits) and GGUF types other
   * than the one block format per bit width the learned grid maps onto.
   *
   * @throws UnsupportedOperationException with the reason
   */
  public static void checkExports(int bits, boolean compressedTensors, LlamaFileType gguf) {
    if (bits != 4 && bits != 8) {
      String to = compressedTensors ? "compressed-tensors" : gguf != null ? "gguf" : null;
      if (to != null) {
        throw new UnsupportedOperationException(
            "not supported yet: "
                + bits
                + "-bit export to "
                + to
                + " (4 and 8 bits are); export only the dequantized safetensors to evaluate the"
                + " fake-quantized model");
      }
    }
    if (gguf != null && gguf != ggufType(bits)) {
      throw new UnsupportedOperationException(
          "not supported yet: qat export to GGUF "
              + gguf.label()
              + "; a "
              + bits
              + "-bit learned grid maps onto ggml's "
              + ggufType(bits).label()
              + " blocks only");
    }
  }

  /** Data-order seed of every QAT run. */
  public static final long SEED = 1234L;

  /**
   * QAT's distillation: temperature 1, {@code alpha · KL + (1 − alpha) · CE}, AdamW without weight
   * decay, warm-up over the first twentieth of the steps then cosine, gradients clipped at 1, no
   * periodic checkpoints (only the last).
   */
  public static DistillationSpec spec(int steps, int batch, float lr, float alpha) {
    return new DistillationSpec(1f, alpha, steps, batch, lr, steps / 20, 0f, 1f, 0, SEED);
  }

  /** The GGUF block type a {@code bits}-bit QAT grid is exported as: q4_0 or q8_0. */
  public static LlamaFileType ggufType(int bits) {
    return bits == 8 ? LlamaFileType.Q8_0 : LlamaFileType.Q4_0;
  }

  /** Told as the run goes; {@link #step} may throw to stop the training (cancellation). */
  public interface Listener {
    Listener NONE = (step, total, loss) -> {};

    /** The init's dequantized checkpoint is in {@code initDir} (scratch, gone after the run). */
    default void initWritten(Path initDir) throws IOException {}

    /** After each training step. */
    void step(long step, long totalSteps, double loss);

    /** A phase after training began or ended (writing an export). */
    default void phase(String message) {}
  }

  /**
   * What was written.
   *
   * @param report the training
   * @param quantizedLinears decoder linears on the learned grid
   * @param quantizedParameters their weights
   * @param quantizedLinearBytes their stored size (codes and steps, as compressed-tensors stores
   *     them)
   * @param quantizedModelBytes the model stored quantized: quantized linears as above, every other
   *     tensor as in the input
   * @param sourceBytes bytes of all tensors of the input
   * @param ggufFile the GGUF file, or null
   * @param ggufBytes its size, or 0
   * @param ggmlExactBlocks the fraction of the GGUF file's 32-value blocks of decoder linears that
   *     keep the learned step, NaN without GGUF
   */
  public record Result(
      DistillationReport report,
      int quantizedLinears,
      long quantizedParameters,
      long quantizedLinearBytes,
      long quantizedModelBytes,
      long sourceBytes,
      Path ggufFile,
      long ggufBytes,
      double ggmlExactBlocks) {}

  /**
   * Runs {@code r} against {@code teacher} (the source model, loaded by the caller), on the CPU.
   *
   * @param extraConfig the keys added to every config.json written (provenance), made from the
   *     training's report
   * @param work an empty scratch directory
   * @param sink the training's checkpoints
   */
  public static Result run(
      Request r,
      CausalLM teacher,
      Function<DistillationReport, ObjectNode> extraConfig,
      Path work,
      CheckpointSink sink,
      Listener listener)
      throws IOException {
    Outputs o = r.outputs();
    Files.createDirectories(work);
    Path initDir = work.resolve("init");
    DistillationReport report;
    Map<String, QuantizedLinear> grid;
    double exact = Double.NaN;
    try (QuantizationAwareTraining qat =
        QuantizationAwareTraining.start(
            r.model(), r.init(), r.calibration(), initDir, Device.cpu(), ProgressListener.NONE)) {
      listener.initWritten(initDir);
      report = qat.train(teacher, r.train(), r.spec(), sink, listener::step);
      ObjectNode extra = extraConfig.apply(report);
      listener.phase("writing the learned grid dequantized");
      qat.writeDequantized(o.dequantized(), extra);
      grid = qat.export();
      if (o.gguf() != null) {
        exact = QuantizationAwareTraining.ggmlExactBlockFraction(grid);
      }
      if (o.compressedTensors() != null) {
        listener.phase("writing compressed-tensors");
        qat.writeCompressedTensors(
            o.compressedTensors(), ModelDirectory.open(r.model()).dominantDType());
        Path config = o.compressedTensors().resolve("config.json");
        ObjectNode c = (ObjectNode) JSON.readTree(config.toFile());
        c.setAll(extra);
        ModelDirectory.writeConfig(o.compressedTensors(), c);
      }
    }
    Path ggufFile = null;
    long ggufBytes = 0;
    if (o.gguf() != null) {
      listener.phase("writing GGUF " + o.gguf().label());
      Files.createDirectories(o.ggufDir());
      ggufFile = o.ggufDir().resolve("model-" + o.gguf().label() + ".gguf");
      GgufExport.export(o.dequantized(), o.gguf(), Map.of(), ggufFile);
      ggufBytes = Files.size(ggufFile);
    }
    long params = 0;
    long bytes = 0;
    for (QuantizedLinear q : grid.values()) {
      params += (long) q.rows() * q.cols();
      bytes += LayerwiseQuantizer.storedBytes(q);
    }
    ModelDirectory input = ModelDirectory.open(r.model());
    long linearSource = 0;
    try (TensorSource src = input.weights()) {
      for (String n : src.names()) {
        if (LayerwiseQuantizer.isDecoderLinear(n)) {
          linearSource += src.info(n).byteLength();
        }
      }
    }
    long source = input.totalWeightBytes();
    return new Result(
        report,
        grid.size(),
        params,
        bytes,
        source - linearSource + bytes,
        source,
        ggufFile,
        ggufBytes,
        exact);
  }
}
