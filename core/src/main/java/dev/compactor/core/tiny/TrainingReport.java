package dev.compactor.core.tiny;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The headline figures of a tiny reference model build, read from its training_report.json:
 * held-out quality next to the byte-unigram floor, size and training time.
 */
public record TrainingReport(
    String recipeHash,
    long parameters,
    double trainingSeconds,
    double finalTrainLoss,
    double validationPerplexity,
    double validationBitsPerByte,
    double validationUnigramBitsPerByte,
    double testPerplexity,
    double testBitsPerByte,
    double testUnigramBitsPerByte) {

  /** Parses {@code file}. */
  public static TrainingReport read(Path file) throws IOException {
    JsonNode n = new ObjectMapper().readTree(file.toFile());
    JsonNode v = n.path("validation");
    JsonNode t = n.path("test");
    return new TrainingReport(
        n.path("recipeHash").asText(),
        n.path("parameters").asLong(),
        n.path("trainingSeconds").asDouble(),
        n.path("finalTrainLoss").asDouble(),
        v.path("perplexity").asDouble(),
        v.path("bitsPerByte").asDouble(),
        v.path("unigramBitsPerByte").asDouble(),
        t.path("perplexity").asDouble(),
        t.path("bitsPerByte").asDouble(),
        t.path("unigramBitsPerByte").asDouble());
  }
}
