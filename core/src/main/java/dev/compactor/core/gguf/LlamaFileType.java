package dev.compactor.core.gguf;

import java.util.Locale;

/**
 * llama.cpp's {@code llama_ftype}: what a GGUF file's {@code general.file_type} declares, i.e. the
 * quantization mix llama-quantize would have written. Each file type has a default tensor type; the
 * per-tensor choices (which tensors get more bits, fallbacks for short rows) are {@link
 * LlamaQuantMix}'s port of {@code llama_tensor_get_type}, so a file declared Q4_K_M holds what
 * llama-quantize's Q4_K_M holds.
 */
public enum LlamaFileType {
  F32(0, GgmlType.F32),
  F16(1, GgmlType.F16),
  Q4_0(2, GgmlType.Q4_0),
  Q4_1(3, GgmlType.Q4_1),
  Q8_0(7, GgmlType.Q8_0),
  Q5_0(8, GgmlType.Q5_0),
  Q5_1(9, GgmlType.Q5_1),
  Q4_K_S(14, GgmlType.Q4_K),
  Q4_K_M(15, GgmlType.Q4_K),
  Q5_K_S(16, GgmlType.Q5_K),
  Q5_K_M(17, GgmlType.Q5_K),
  Q6_K(18, GgmlType.Q6_K);

  private final int id;
  private final GgmlType defaultType;

  LlamaFileType(int id, GgmlType defaultType) {
    this.id = id;
    this.defaultType = defaultType;
  }

  /** The {@code llama_ftype} value written as {@code general.file_type}. */
  public int id() {
    return id;
  }

  /** {@code llama_ftype_get_default_type}: the type of every tensor no rule singles out. */
  public GgmlType defaultType() {
    return defaultType;
  }

  /** The lower-case name used in export lists ({@code gguf:q4_k_m}). */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /**
   * Parses a name such as {@code q4_k_m}; {@code q4_k} and {@code q5_k} are the aliases of {@code
   * q4_k_m} and {@code q5_k_m}, as in llama-quantize.
   */
  public static LlamaFileType parse(String name) {
    String n = name.trim().toUpperCase(Locale.ROOT);
    switch (n) {
      case "Q4_K":
        return Q4_K_M;
      case "Q5_K":
        return Q5_K_M;
      default:
        break;
    }
    try {
      return valueOf(n);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "unknown GGUF file type '"
              + name
              + "'; expected one of f32, f16, q8_0, q6_k, q5_k_m, q5_k_s, q5_k (= q5_k_m), q5_1,"
              + " q5_0, q4_k_m, q4_k_s, q4_k (= q4_k_m), q4_1, q4_0",
          e);
    }
  }
}
