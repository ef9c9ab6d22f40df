package dev.compactor.services.quantization;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.CalibrationText;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.Distiller;
import dev.compactor.core.distill.LocalCheckpointSink;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.WeightSparsity;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.quant.pipeline.QuantizationPipeline;
import dev.compactor.core.quant.qat.QatRun;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.recipe.Calibration;
import dev.compactor.core.recipe.QuantizeParams;
import dev.compactor.core.recipe.QuantizeParams.ExportFormat;
import dev.compactor.core.recipe.StageSpec;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import dev.compactor.runtime.StageContext;
import dev.compactor.runtime.StageResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The quantize stage's {@code method: qat}: quantization-aware training with the same {@link
 * QatRun} as {@code compactor qat}. The init (RTN, or GPTQ calibrated on the recipe's calibration
 * windows) is trained against the stage's input model on windows of the calibration text's training
 * split, and the learned grid is written as the other methods write theirs: the dequantized Hugging
 * Face directory at the artifact's root (what evaluation measures), {@code compressed-tensors/}
 * (pack-quantized codes and learned steps) and {@code model-q4_0.gguf} / {@code model-q8_0.gguf}
 * when the recipe's export asks. Both checkpoints carry {@code compactor_provenance}.
 *
 * <p>When the calibration text's validation split is long enough, the held-out KL (mean per token
 * against the input, on windows of that split) is measured for the init and for the trained model,
 * so the metrics say what training bought over RTN or GPTQ; the trained model is passed on either
 * way.
 */
final class QatQuantization {
  private static final Logger LOG = LoggerFactory.getLogger(QatQuantization.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Windows of the validation split the init and the trained model are compared on. */
  static final int HELD_OUT_WINDOWS = 16;

  /** Seeds of the GPTQ calibration windows, the training windows and the held-out windows. */
  static final long CALIBRATION_SEED = QuantizationStage.SEED;

  static final long TRAIN_SEED = 1;
  static final long HELD_OUT_SEED = 2;

  private QatQuantization() {}

  static StageResult run(StageContext ctx, StageSpec stage, QuantizeParams params)
      throws Exception {
    QuantizeParams.Qat qat = params.qat();
    Path in = ctx.inputDir();
    ModelConfig config = ModelConfig.read(in);
    WeightQuantization init = init(params);
    init.checkFits(config.linearInputWidths());
    Path out = ctx.outputDir();
    LlamaFileType gguf = gguf(params);
    QatRun.Outputs outputs =
        new QatRun.Outputs(
            out,
            params.export().stream()
                    .anyMatch(f -> f.container() == ExportFormat.Container.COMPRESSED_TENSORS)
                ? out.resolve(QuantizationStage.COMPRESSED_TENSORS_DIR)
                : null,
            gguf,
            out);
    QuantizationStage.CalibrationInput input = QuantizationStage.calibrationInput(ctx, stage, in);
    Calibration c = input.calibration();
    CalibrationText text = input.text();
    Corpus corpus = input.corpus();
    int seq = Math.min(qat.seqLen(), config.maxPositions() - 1);
    int calSeq = Math.min(c.seqLen(), config.maxPositions());
    List<int[]> calibration;
    List<int[]> train;
    List<int[]> heldOut;
    try (TextTokenizer tok = Tokenizers.forModel(in)) {
      calibration =
          init.method() == WeightQuantization.Method.GPTQ
              ? corpus.calibrationSamples(tok, c.samples(), calSeq, CALIBRATION_SEED)
              : List.of();
      train = corpus.calibrationSamples(tok, qat.windows(), seq + 1, TRAIN_SEED);
      try {
        heldOut = corpus.validationSamples(tok, HELD_OUT_WINDOWS, seq + 1, HELD_OUT_SEED);
      } catch (IllegalArgumentException tooShort) {
        heldOut = List.of();
        LOG.info(
            "job {}: qat is not measured on held-out text: {}", ctx.jobId(), tooShort.getMessage());
      }
    }
    ObjectNode provenance = provenance(ctx, params, text, c, calSeq, seq, train.size(), gguf);
    HeldOutKl figures = new HeldOutKl();
    long t0 = System.nanoTime();
    ctx.progress()
        .report(
            0.02,
            "qat "
                + init.label()
                + ": "
                + qat.steps()
                + " steps against the input, "
                + train.size()
                + " windows of "
                + seq
                + " tokens");
    QatRun.Result r;
    List<int[]> held = heldOut;
    try (Transformer teacher = Transformer.load(in, Device.cpu())) {
      QatRun.Listener listener =
          new QatRun.Listener() {
            @Override
            public void initWritten(Path initDir) throws IOException {
              ctx.checkCancelled();
              if (!held.isEmpty()) {
                try (Transformer m = Transformer.load(initDir, Device.cpu())) {
                  figures.klBefore = Distiller.meanKl(teacher, m, held, 4);
                }
              }
              ctx.progress().report(0.1, init.method().id() + " init written; training");
            }

            @Override
            public void step(long step, long total, double loss) {
              ctx.checkCancelled();
              ctx.progress()
                  .report(
                      0.1 + 0.8 * step / Math.max(1, total),
                      String.format(
                          Locale.ROOT, "qat step %d of %d, loss %.5f", step, total, loss));
            }

            @Override
            public void phase(String message) {
              ctx.checkCancelled();
              ctx.progress().report(0.9, message);
            }
          };
      r =
          QatRun.run(
              new QatRun.Request(
                  in,
                  init,
                  calibration,
                  train,
                  QatRun.spec(qat.steps(), qat.batch(), (float) qat.lr(), (float) qat.alpha()),
                  outputs),
              teacher,
              report -> {
                ObjectNode p = provenance.deepCopy();
                ((ObjectNode) p.get("qat"))
                    .put("trained_tokens", report.tokens())
                    .put("loss_first", report.startLoss())
                    .put("loss_last", report.endLoss());
                ObjectNode extra = JSON.createObjectNode();
                extra.set(QuantizationPipeline.PROVENANCE_KEY, p);
                return extra;
              },
              ctx.workDir().resolve("qat"),
              new LocalCheckpointSink(ctx.workDir().resolve("qat-checkpoints"), 1),
              listener);
      if (!held.isEmpty()) {
        try (Transformer m = Transformer.load(out, Device.cpu())) {
          figures.klAfter = Distiller.meanKl(teacher, m, held, 4);
        }
      }
    }
    Map<String, Double> metrics = new LinkedHashMap<>();
    metrics.put("bits", (double) init.bits());
    metrics.put("groupSize", (double) (init.groupSize() == 0 ? -1 : init.groupSize()));
    metrics.put("quantizedTensors", (double) r.quantizedLinears());
    metrics.put("quantizedParameters", (double) r.quantizedParameters());
    metrics.put("quantizedWeightBytes", (double) r.quantizedLinearBytes());
    metrics.put(
        "bitsPerWeight",
        r.quantizedParameters() == 0
            ? 0
            : 8.0 * r.quantizedLinearBytes() / r.quantizedParameters());
    metrics.put("quantizedModelBytes", (double) r.quantizedModelBytes());
    metrics.put("sourceWeightBytes", (double) r.sourceBytes());
    metrics.put("ggufFiles", gguf == null ? 0.0 : 1.0);
    if (gguf != null) {
      metrics.put("ggufBytes" + gguf.name(), (double) r.ggufBytes());
      metrics.put("qatGgufLearnedBlockFraction", r.ggmlExactBlocks());
    }
    metrics.put("qatSteps", (double) r.report().totalSteps());
    metrics.put("qatTrainedTokens", (double) r.report().tokens());
    metrics.put("qatLossFirst", r.report().startLoss());
    metrics.put("qatLossLast", r.report().endLoss());
    if (!Double.isNaN(figures.klBefore)) {
      metrics.put("qatHeldOutKlInit", figures.klBefore);
      metrics.put("qatHeldOutKlAfter", figures.klAfter);
    }
    metrics.put("seconds", (System.nanoTime() - t0) / 1e9);
    metrics.put("sparsity", WeightSparsity.of(out).fraction());
    return StageResult.of(out, "hf-safetensors", metrics);
  }

  /** The init's grid: rtn or gptq at the recipe's bits and group size, symmetric. */
  static WeightQuantization init(QuantizeParams p) {
    WeightQuantization.Method m = WeightQuantization.Method.parse(p.qat().init().key());
    return new WeightQuantization(m, p.bits(), p.groupSize() < 0 ? 0 : p.groupSize(), true);
  }

  /** The GGUF file asked for: q4_0 at 4 bits, q8_0 at 8 (others refused), or null. */
  static LlamaFileType gguf(QuantizeParams p) {
    LlamaFileType type = null;
    for (ExportFormat f : p.export()) {
      if (f.container() == ExportFormat.Container.GGUF) {
        LlamaFileType t =
            f.ggufType() == null ? QatRun.ggufType(p.bits()) : LlamaFileType.parse(f.ggufType());
        QatRun.checkExports(p.bits(), false, t);
        type = t;
      }
    }
    return type;
  }

  private static ObjectNode provenance(
      StageContext ctx,
      QuantizeParams params,
      CalibrationText text,
      Calibration c,
      int calSeq,
      int seq,
      int trainWindows,
      LlamaFileType gguf)
      throws IOException {
    QuantizeParams.Qat qat = params.qat();
    ObjectNode p = JSON.createObjectNode();
    p.put("tool", "compactor quantization service");
    p.put("job_id", ctx.jobId());
    p.put("step", ctx.request().getStep());
    p.set("stage_params", JSON.readTree(ctx.request().getParamsJson()));
    p.put("recipe", ctx.request().getRecipeYaml());
    p.put("method", "qat");
    p.put("bits", params.bits());
    p.put("group_size", params.groupSize());
    p.put("symmetric", true);
    ObjectNode q = p.putObject("qat");
    q.put("method", "lsq fake quantization, straight-through estimator");
    q.put("init", qat.init().key());
    q.put("steps", qat.steps());
    q.put("lr", qat.lr());
    q.put("alpha", qat.alpha());
    q.put("temperature", 1.0);
    q.put("batch", qat.batch());
    q.put("seq_len", seq);
    q.put("teacher", "the stage's input model");
    ArrayNode exports = p.putArray("exports");
    params.export().forEach(f -> exports.add(f.toString()));
    if (gguf != null) {
      p.put(
          "gguf_note",
          "GGUF "
              + gguf.label()
              + " is quantized by ggml's rule from the dequantized QAT weights (no importance"
              + " matrix): only blocks holding the extreme code keep the learned step; the metric"
              + " qatGgufLearnedBlockFraction says how many");
    }
    ObjectNode cal = p.putObject("calibration");
    cal.put("source", text.source());
    cal.put("sha256", text.sha256());
    if (qat.init() == QuantizeParams.QatInit.GPTQ) {
      cal.put("samples", c.samples());
      cal.put("seq_len", calSeq);
      cal.put("seed", CALIBRATION_SEED);
    }
    cal.put("train_windows", trainWindows);
    cal.put("train_seq_len", seq + 1);
    cal.put("train_seed", TRAIN_SEED);
    cal.put("held_out_windows", HELD_OUT_WINDOWS);
    cal.put("held_out_split", "validation");
    ObjectNode hashes = p.putObject("input").putObject("sha256");
    if (ctx.inputManifest().isPresent()) {
      // verified against its manifest on download: reuse those hashes
      ctx.inputManifest().get().files().forEach(f -> hashes.put(f.path(), f.sha256()));
    } else {
      try {
        ModelDirectory.open(ctx.inputDir()).sha256Files().forEach(hashes::put);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return p;
  }

  /** The held-out KL of the init and of the trained model; NaN when not measured. */
  private static final class HeldOutKl {
    double klBefore = Double.NaN;
    double klAfter = Double.NaN;
  }
}
