package dev.compactor.core.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WeightSparsityTest {

  @Test
  void countsTheExactZerosOfDecoderLinearsOnly(@TempDir Path tmp) throws Exception {
    Random rnd = new Random(3);
    long zeros = 0;
    long elements = 0;
    // 300k elements: more than one read chunk
    float[] big = new float[600 * 500];
    float[] small = new float[48 * 32];
    float[] embed = new float[67 * 32];
    try (SafetensorsWriter w = new SafetensorsWriter(tmp, Map.of())) {
      for (float[] a : new float[][] {big, small}) {
        for (int i = 0; i < a.length; i++) {
          double u = rnd.nextDouble();
          // -0.0 is an exact zero too; 1e-30 is not
          a[i] = u < 0.25 ? 0f : u < 0.3 ? -0f : u < 0.35 ? 1e-30f : (float) rnd.nextGaussian();
        }
      }
      // embeddings and norms are not pruned and must not count, zeros or not
      w.write("model.embed_tokens.weight", DType.F32, new long[] {67, 32}, embed);
      w.write("model.layers.0.mlp.up_proj.weight", DType.F32, new long[] {600, 500}, big);
      w.write("model.layers.0.self_attn.q_proj.weight", DType.BF16, new long[] {48, 32}, small);
      w.write("model.norm.weight", DType.F32, new long[] {32}, new float[32]);
    }
    Files.writeString(tmp.resolve("config.json"), "{\"model_type\":\"llama\"}");
    for (float[] a : new float[][] {big, small}) {
      for (float v : a) {
        zeros += Float.compare(Math.abs(v), 0f) == 0 ? 1 : 0;
      }
      elements += a.length;
    }
    WeightSparsity s = WeightSparsity.of(tmp);
    assertEquals(elements, s.elements());
    assertEquals(zeros, s.zeros());
    assertEquals((double) zeros / elements, s.fraction(), 1e-12);
  }
}
