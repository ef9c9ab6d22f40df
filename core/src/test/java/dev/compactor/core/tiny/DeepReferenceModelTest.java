package dev.compactor.core.tiny;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.io.Bf16;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsFile;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.metrics.PerplexityEvaluator;
import dev.compactor.core.metrics.PerplexityResult;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.Transformer;
import dev.compactor.core.tokenizer.ByteTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code deep-llama-v1}, the 8-layer reference Llama in {@code models/deep-llama-v1}: its shape is
 * the one the recipe promises, the committed copy is intact and made by the current recipe, its
 * BF16 file reproduces the reported held-out quality, and BF16 storage is exactly fp32 weights
 * rounded to nearest even (checked on a miniature build).
 */
class DeepReferenceModelTest {

  @Test
  void configIsAnEightLayerGqaLlamaOfAboutSixMillionParameters() {
    ModelConfig c = DeepReferenceModel.config();
    assertEquals(ModelConfig.Family.LLAMA, c.family());
    assertEquals(TinyRecipe.VOCAB, c.vocabSize());
    assertEquals(256, c.hiddenSize());
    assertEquals(704, c.intermediateSize());
    assertEquals(8, c.numLayers());
    assertEquals(8, c.numHeads());
    assertEquals(4, c.numKvHeads());
    assertEquals(256, c.maxPositions());
    // embeddings + head: 2 * 257 * 256; per layer: q, o 256x256, k, v 128x256, 3 MLP 256x704,
    // 2 norms; final norm
    long perLayer = 2L * 256 * 256 + 2L * 128 * 256 + 3L * 256 * 704 + 2 * 256;
    assertEquals(2L * 257 * 256 + 8 * perLayer + 256, c.parameterCount());
    assertTrue(c.parameterCount() > 5_000_000 && c.parameterCount() < 20_000_000);
    assertTrue(c.parameterCount() * DeepReferenceModel.STORAGE.bytes() <= 32_000_000);
  }

  private static Path shippedDir() {
    Path dir = Paths.get("..").resolve(DeepReferenceModel.SHIPPED_DIR);
    return Files.isDirectory(dir) ? dir : Paths.get(DeepReferenceModel.SHIPPED_DIR);
  }

  /** The committed model: intact, made by the current recipe, as good as its report says. */
  @Test
  void shippedModelMatchesItsRecipeAndReport() throws Exception {
    Path dir = DeepReferenceModel.shipped();
    assertEquals(
        shippedDir().toAbsolutePath().normalize(), dir.toAbsolutePath().normalize(), "found");
    TrainingReport report = TinyReferenceModel.report(dir);
    assertEquals(
        DeepReferenceModel.recipeHash(),
        report.recipeHash(),
        "DeepReferenceModel.RECIPE, its config or the training text changed: retrain (see"
            + " models/deep-llama-v1/TRAINING.md)");
    assertEquals(DeepReferenceModel.config().parameterCount(), report.parameters());
    assertEquals(
        DeepReferenceModel.config().toJson(),
        ModelConfig.read(dir).toJson(),
        "config.json is the recipe's config");
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      for (TensorInfo t : f.infos()) {
        assertEquals(DType.BF16, t.dtype(), t.name());
      }
    }
    String training = Files.readString(dir.resolve("TRAINING.md"));
    String weights = TinyRecipe.sha256(Files.readAllBytes(dir.resolve("model.safetensors")));
    assertTrue(training.contains(weights), "TRAINING.md must quote the weights' sha256 " + weights);
    ReferenceReports.assertValidationReproduces(dir, report);
  }

  @Test
  void anAlteredCopyIsRefused(@TempDir Path tmp) throws Exception {
    Path copy = TinyReferenceModel.copyShipped(DeepReferenceModel.shipped(), tmp.resolve("c"));
    TinyReferenceModel.verify(copy);
    Path config = copy.resolve("config.json");
    Files.writeString(config, Files.readString(config).replace("704", "705"));
    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> TinyReferenceModel.verify(copy));
    assertTrue(e.getMessage().contains("config.json: sha256"), e.getMessage());
  }

  /**
   * BF16 storage through the real build path, on a miniature recipe: the stored values are the fp32
   * build's weights (same seed, same steps) rounded to nearest even, and the report's held-out
   * figures are those of the BF16 file, not of the fp32 weights it was written from.
   */
  @Test
  void bf16BuildStoresRoundedWeightsAndReportsTheStoredFile(@TempDir Path tmp) throws Exception {
    TinyRecipe mini =
        new TinyRecipe("mini", 32, 64, 2, 4, 2, 32, 4, 6, 3e-3, 3e-4, 2, 0.1, 0.95, 1.0, 1234);
    Path f32 = tmp.resolve("f32");
    Path bf16 = tmp.resolve("bf16");
    TinyReferenceModel.train(f32, mini, mini.config(), DType.F32, ProgressListener.NONE);
    ModelConfig bfConfig = mini.config().with("{\"torch_dtype\":\"bfloat16\"}");
    assertEquals(
        bf16,
        TinyReferenceModel.buildOrReuse(bf16, mini, bfConfig, DType.BF16, ProgressListener.NONE));
    TinyReferenceModel.verify(bf16);
    assertEquals(
        "bfloat16",
        new ObjectMapper()
            .readTree(bf16.resolve("config.json").toFile())
            .path("torch_dtype")
            .asText());
    try (SafetensorsFile a = SafetensorsFile.open(f32.resolve("model.safetensors"));
        SafetensorsFile b = SafetensorsFile.open(bf16.resolve("model.safetensors"))) {
      assertEquals(a.names().size(), b.names().size());
      for (String name : a.names()) {
        assertEquals(DType.BF16, b.info(name).dtype(), name);
        float[] full = a.readFloats(name);
        float[] half = b.readFloats(name);
        assertEquals(full.length, half.length, name);
        for (int i = 0; i < full.length; i++) {
          assertEquals(Bf16.toFloat(Bf16.fromFloat(full[i])), half[i], 0f, name + "[" + i + "]");
        }
      }
    }
    var report = new ObjectMapper().readTree(bf16.resolve(TinyReferenceModel.REPORT).toFile());
    assertEquals("BF16", report.path("weightsDType").asText());
    assertEquals(
        Files.size(bf16.resolve("model.safetensors")), report.path("weightsBytes").asLong());
    TrainingReport rf = TinyReferenceModel.report(f32);
    TrainingReport rb = TinyReferenceModel.report(bf16);
    assertNotEquals(rf.recipeHash(), rb.recipeHash(), "the storage type is part of the build");
    assertEquals(rf.finalTrainLoss(), rb.finalTrainLoss(), 0.0, "same training");
    assertNotEquals(rf.validationBitsPerByte(), rb.validationBitsPerByte());
    String text = Corpus.europarlEnglish().validationText();
    try (Transformer model = Transformer.load(bf16, Device.cpu())) {
      PerplexityResult r =
          new PerplexityEvaluator(mini.context(), mini.context())
              .evaluate(model, new ByteTokenizer(), text, ProgressListener.NONE);
      assertEquals(rb.validationBitsPerByte(), r.bitsPerByte(), 1e-9);
    }
  }

  /**
   * Trains {@code deep-llama-v1} into the given directory (about 30 minutes on two idle cores):
   * {@code mvn -B -ntp -pl core test -Dtest=DeepReferenceModelTest
   * -Dcompactor.tiny.deep.out=/tmp/deep-llama-v1}; {@code ./compactor tiny-model --model
   * deep-llama-v1 --train --out DIR} does the same.
   */
  @Test
  @EnabledIfSystemProperty(named = "compactor.tiny.deep.out", matches = ".+")
  void trainsTheReferenceModel() throws Exception {
    Path out = Paths.get(System.getProperty("compactor.tiny.deep.out"));
    DeepReferenceModel.train(out, ProgressListener.NONE);
    assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
  }
}
