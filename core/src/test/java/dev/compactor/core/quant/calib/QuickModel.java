package dev.compactor.core.quant.calib;

import ai.djl.Device;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tiny.TinyReferenceModel;
import dev.compactor.core.tokenizer.ByteTokenizer;
import dev.compactor.core.train.AdamW;
import dev.compactor.core.train.CausalLmTrainer;
import dev.compactor.core.train.CosineSchedule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The model the quality test quantizes: {@code -Dcompactor.quality.modelDir} (e.g. the tiny
 * reference model's directory), else a small byte-level Llama (hidden 128, 2 layers, intermediate
 * 512, context 128) trained here from a fixed seed for 300 steps on the europarl training split
 * (about 3 minutes) and cached next to the tiny reference model. Its own model, rather than the
 * reference build, keeps the test's time bounded and its figures reproducible.
 */
final class QuickModel {

  private static final Logger LOG = LoggerFactory.getLogger(QuickModel.class);
  static final int STEPS = 300;

  private QuickModel() {}

  static Path resolve() throws IOException {
    String override = System.getProperty("compactor.quality.modelDir");
    if (override != null) {
      return Path.of(override);
    }
    Path cache = TinyReferenceModel.defaultDir().getParent();
    Path dir = cache.resolve("quality-llama-" + STEPS);
    if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
      return dir;
    }
    ModelConfig config = ModelConfig.llama(257, 128, 512, 2, 4, 2, 128);
    int[] data = new ByteTokenizer().encode(Corpus.europarlEnglish().trainText());
    SplittableRandom random = new SplittableRandom(99);
    Path tmp = cache.resolve("quality-llama-tmp-" + ProcessHandle.current().pid());
    try (Transformer model = Transformer.randomInit(config, 99, Device.cpu());
        AdamW adamw =
            new AdamW(
                model.parameters(), 0.9, 0.95, 1e-8, 0.1, AdamW.matricesOnly(model.parameters()))) {
      CausalLmTrainer trainer =
          CausalLmTrainer.languageModeling(
              model, adamw, new CosineSchedule(3e-3, 3e-4, 20, STEPS), 1.0);
      int[][] batch = new int[16][128];
      for (int step = 0; step < STEPS; step++) {
        for (int[] row : batch) {
          System.arraycopy(data, random.nextInt(data.length - 128), row, 0, 128);
        }
        float loss = trainer.step(batch);
        if ((step + 1) % 50 == 0) {
          LOG.info("quick model step {}/{} loss {}", step + 1, STEPS, loss);
        }
      }
      model.save(tmp, DType.F32, Map.of());
    }
    if (!Files.exists(dir)) {
      Files.move(tmp, dir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
    return dir;
  }
}
