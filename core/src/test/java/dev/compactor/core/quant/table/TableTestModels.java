package dev.compactor.core.quant.table;

import ai.djl.Device;
import dev.compactor.core.io.DType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteLevelTokenizerFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small random Llama checkpoints with the byte-level tokenizer, for the table package's tests. */
final class TableTestModels {

  /** Rows of 256 so the k-quants apply; 4 heads, 2 kv heads (GQA) to exercise the permutation. */
  static final ModelConfig CONFIG = ModelConfig.llama(257, 256, 512, 2, 4, 2, 64);

  private TableTestModels() {}

  static Path write(Path dir, ModelConfig config, long seed) throws IOException {
    try (Transformer t = Transformer.randomInit(config, seed, Device.cpu())) {
      t.save(dir, DType.F32, Map.of());
    }
    ByteLevelTokenizerFiles.write(dir, config.maxPositions());
    return dir;
  }

  static List<int[]> samples(int count, int len, long seed) {
    Random r = new Random(seed);
    List<int[]> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] s = new int[len];
      for (int j = 0; j < len; j++) {
        s[j] = r.nextInt(256);
      }
      out.add(s);
    }
    return out;
  }
}
