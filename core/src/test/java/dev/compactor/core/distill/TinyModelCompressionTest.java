package dev.compactor.core.distill;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.DType;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.prune.Pruning;
import dev.compactor.core.prune.PruningReport;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.tokenizer.ByteTokenizer;
import dev.compactor.core.train.AdamW;
import dev.compactor.core.train.CausalLmTrainer;
import dev.compactor.core.train.CosineSchedule;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A measurement, not a unit test (minutes): a small byte-level Llama is trained here on English
 * Europarl text, then pruned (magnitude vs Wanda) and distilled to half its depth, every result
 * scored on held-out text. Run with {@code mvn -B -ntp -pl core -am test
 * -Dtest=TinyModelCompressionTest -Dsurefire.failIfNoSpecifiedTests=false
 * -Dcompactor.measure=true}.
 */
@EnabledIfSystemProperty(named = "compactor.measure", matches = "true")
class TinyModelCompressionTest {

  private static final Logger LOG = LoggerFactory.getLogger(TinyModelCompressionTest.class);
  private static final int EVAL_CHARS = 40_000;
  private static final int CONTEXT = 128;
  private static final int TRAIN_STEPS = 300;

  @Test
  void wandaBeatsMagnitudeAndDistillationClosesTheGap(@TempDir Path tmp) throws Exception {
    Corpus corpus = Corpus.europarlEnglish();
    ByteTokenizer tokenizer = new ByteTokenizer();
    Path teacherDir = trainTeacher(corpus, tokenizer, tmp.resolve("teacher"));
    String heldOut = corpus.validationText().substring(0, EVAL_CHARS);
    PerplexityEvaluator ppl = new PerplexityEvaluator(CONTEXT, CONTEXT, 8);
    List<int[]> calibration = corpus.calibrationSamples(tokenizer, 64, CONTEXT, 7);

    double dense = perplexity(teacherDir, tokenizer, heldOut, ppl);
    LOG.info("dense: perplexity {}", dense);
    double[] results = new double[PruningSpec.Method.values().length];
    for (double sparsity : new double[] {0.5}) {
      for (PruningSpec.Method method : PruningSpec.Method.values()) {
        Path out = tmp.resolve(method + "-" + sparsity);
        PruningReport r =
            Pruning.run(
                PruningSpec.of(method, sparsity), teacherDir, out, () -> calibration, Device.cpu());
        double p = perplexity(out, tokenizer, heldOut, ppl);
        results[method.ordinal()] = p;
        LOG.info(
            "{} at {}: sparsity {} perplexity {} (dense {})",
            method,
            sparsity,
            r.overallSparsity(),
            p,
            dense);
      }
    }
    assertTrue(results[1] < results[0], "wanda " + results[1] + " vs magnitude " + results[0]);

    List<int[]> windows =
        new ArrayList<>(corpus.calibrationSamples(tokenizer, 256, CONTEXT + 1, 11));
    StudentBuilder.build(teacherDir, tmp.resolve("undistilled"), 2);
    DistillationSpec spec = new DistillationSpec(2f, 0.5f, 200, 16, 2e-3f, 10, 0f, 1f, 100, 3L);
    DistillationReport report =
        new Distiller(spec, new LocalCheckpointSink(tmp.resolve("ckpt"), 1))
            .distillDirectory(
                teacherDir,
                tmp.resolve("work"),
                tmp.resolve("student"),
                2,
                windows,
                DType.F32,
                Device.cpu());
    List<int[]> klWindows = corpus.calibrationSamples(tokenizer, 32, CONTEXT + 1, 99);
    try (Transformer teacher = Transformer.load(teacherDir, Device.cpu());
        Transformer before = Transformer.load(tmp.resolve("undistilled"), Device.cpu());
        Transformer after = Transformer.load(tmp.resolve("student"), Device.cpu())) {
      double klBefore = Distiller.meanKl(teacher, before, klWindows, 8);
      double klAfter = Distiller.meanKl(teacher, after, klWindows, 8);
      double pplBefore =
          ppl.evaluate(before, tokenizer, heldOut, ProgressListener.NONE).perplexity();
      double pplAfter = ppl.evaluate(after, tokenizer, heldOut, ProgressListener.NONE).perplexity();
      LOG.info(
          "distill 4->2 layers, {} steps in {} s: KL {} -> {}, perplexity {} -> {} (teacher {})",
          report.totalSteps(),
          report.seconds(),
          klBefore,
          klAfter,
          pplBefore,
          pplAfter,
          dense);
      assertTrue(klAfter < klBefore);
    }
  }

  /** A 4-layer byte-level Llama (about 0.2M parameters) fitted to the training text. */
  private static Path trainTeacher(Corpus corpus, ByteTokenizer tokenizer, Path dir)
      throws Exception {
    ModelConfig config = ModelConfig.llama(257, 64, 192, 4, 4, 2, CONTEXT);
    List<int[]> data = corpus.calibrationSamples(tokenizer, TRAIN_STEPS * 16, CONTEXT, 1);
    try (Transformer model = Transformer.randomInit(config, 1, Device.cpu());
        AdamW adam = new AdamW(model.parameters(), 0.1)) {
      CausalLmTrainer trainer =
          CausalLmTrainer.languageModeling(
              model, adam, new CosineSchedule(3e-3, 3e-4, 20, TRAIN_STEPS), 1.0);
      float first = 0;
      float last = 0;
      for (int step = 0; step < TRAIN_STEPS; step++) {
        int[][] batch = data.subList(step * 16, step * 16 + 16).toArray(new int[0][]);
        last = trainer.step(batch);
        if (step == 0) {
          first = last;
        }
      }
      LOG.info("teacher trained {} steps: loss {} -> {}", TRAIN_STEPS, first, last);
      model.save(dir, DType.F32, Map.of());
    }
    return dir;
  }

  private static double perplexity(
      Path dir, ByteTokenizer tokenizer, String text, PerplexityEvaluator ppl) throws Exception {
    try (Transformer m = Transformer.load(dir, Device.cpu())) {
      PerplexityResult r = ppl.evaluate(m, tokenizer, text, ProgressListener.NONE);
      return r.perplexity();
    }
  }
}
