package dev.compactor.core.tiny;

import dev.compactor.core.model.ModelConfig;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Everything that decides the weights of the tiny reference model: architecture, data, optimiser
 * and seed. Its {@link #hash} names a build, so a cached directory is reused only when it was made
 * by exactly this recipe from exactly this training text.
 */
public record TinyRecipe(
    String name,
    int hidden,
    int intermediate,
    int layers,
    int heads,
    int kvHeads,
    int context,
    int batch,
    int steps,
    double peakLr,
    double minLr,
    int warmupSteps,
    double weightDecay,
    double beta2,
    double clipNorm,
    long seed) {

  /** The vocabulary: 256 bytes plus {@code <|endoftext|>}. */
  public static final int VOCAB = 257;

  /** The Llama config of the model this recipe trains. */
  public ModelConfig config() {
    return ModelConfig.llama(VOCAB, hidden, intermediate, layers, heads, kvHeads, context)
        .with("{\"bos_token_id\": 256, \"eos_token_id\": 256, \"torch_dtype\": \"float32\"}");
  }

  /** SHA-256 over this recipe and a fingerprint of the training text. */
  public String hash(String trainingTextSha256) {
    String canonical = toString() + "|train-text-sha256=" + trainingTextSha256;
    return sha256(canonical.getBytes(StandardCharsets.UTF_8));
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by every Java platform", e);
    }
  }
}
