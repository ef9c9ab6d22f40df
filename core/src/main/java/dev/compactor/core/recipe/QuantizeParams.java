package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Weight quantization and the file formats the quantized model is exported to.
 *
 * @param method rounding algorithm; gptq and awq read calibration activations
 * @param bits weight bits, 4 or 8 (fp8 is always 8, nf4 always 4)
 * @param groupSize weights sharing one scale; -1 means one scale per output channel
 * @param symmetric symmetric (no zero point) or asymmetric quantization
 * @param export formats written next to each other in the output artifact
 */
public record QuantizeParams(
    Method method, int bits, int groupSize, boolean symmetric, List<ExportFormat> export)
    implements StageParams {

  /** Quantization algorithm. */
  public enum Method {
    RTN,
    GPTQ,
    AWQ,
    FP8,
    NF4;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * GGUF file types a {@code gguf:<type>} export may ask for ({@code LlamaFileType} labels, with
   * llama-quantize's aliases q5_k = q5_k_m and q4_k = q4_k_m).
   */
  public static final List<String> GGUF_TYPES =
      List.of(
          "f32", "f16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_k", "q5_1", "q5_0", "q4_k_m",
          "q4_k_s", "q4_k", "q4_1", "q4_0");

  /**
   * One export target: {@code safetensors}, {@code compressed-tensors}, {@code gguf} or {@code
   * gguf:<type>}.
   *
   * @param container the file family
   * @param ggufType the GGUF file type, or null to derive it from {@code bits}
   */
  public record ExportFormat(Container container, String ggufType) {

    /** File family of an export. */
    public enum Container {
      SAFETENSORS("safetensors"),
      COMPRESSED_TENSORS("compressed-tensors"),
      GGUF("gguf");

      private final String key;

      Container(String key) {
        this.key = key;
      }

      public String key() {
        return key;
      }
    }

    /** Parses the recipe spelling; throws with the accepted spellings when it is not one. */
    public static ExportFormat parse(String spec) {
      for (Container c : Container.values()) {
        if (c.key.equals(spec)) {
          return new ExportFormat(c, null);
        }
      }
      if (spec.startsWith("gguf:") && GGUF_TYPES.contains(spec.substring(5))) {
        return new ExportFormat(Container.GGUF, spec.substring(5));
      }
      throw new IllegalArgumentException("expected " + SPELLING + " but found \"" + spec + "\"");
    }

    static final String SPELLING =
        "safetensors, compressed-tensors, gguf or gguf:<" + String.join("|", GGUF_TYPES) + ">";

    @Override
    public String toString() {
      return ggufType == null ? container.key : container.key + ":" + ggufType;
    }
  }

  public QuantizeParams {
    export = List.copyOf(export);
  }

  static final ParamSchema.Type EXPORT_ITEM =
      ParamSchema.parsedText(ExportFormat.SPELLING, ExportFormat::parse);

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("quantize")
          .required("method", ParamSchema.oneOf("rtn", "gptq", "awq", "fp8", "nf4", "codebook"))
          .optional("bits", ParamSchema.intOneOf(4, 8))
          .optional("group_size", ParamSchema.intOneOf(-1, 32, 64, 128))
          .optional("symmetric", ParamSchema.bool())
          .optional("export", ParamSchema.listOf(EXPORT_ITEM));

  /** Checks that need more than one parameter; {@code p} already passed {@link #SCHEMA}. */
  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    String method = Json.text(p, "method", "");
    if (method.equals("codebook")) {
      out.add(
          new RecipeProblem(
              path + ".method",
              "not supported yet: method codebook in a recipe (the quantization service has no"
                  + " codebook path); run ./compactor quantize --method codebook --bits 2|3|4"));
      return;
    }
    boolean hasBits = p.has("bits");
    int bits = Json.integer(p, "bits", 0);
    if (method.equals("fp8") && hasBits && bits != 8) {
      out.add(new RecipeProblem(path + ".bits", "fp8 is an 8-bit format but bits is " + bits));
    }
    if (method.equals("nf4") && hasBits && bits != 4) {
      out.add(new RecipeProblem(path + ".bits", "nf4 is a 4-bit format but bits is " + bits));
    }
    if (method.equals("fp8") && p.has("group_size") && Json.integer(p, "group_size", -1) != -1) {
      out.add(
          new RecipeProblem(
              path + ".group_size",
              "fp8 keeps one scale per output channel: group_size must be -1 or left out"));
    }
    if (method.equals("awq") && hasBits && bits != 4) {
      out.add(new RecipeProblem(path + ".bits", "awq supports bits 4 only, found " + bits));
    }
    if (method.equals("nf4") && Json.integer(p, "group_size", 128) == -1) {
      out.add(
          new RecipeProblem(
              path + ".group_size", "nf4 stores absmax blocks: group_size must be 32, 64 or 128"));
    }
    boolean symmetricGrid = method.equals("fp8") || method.equals("nf4");
    if (symmetricGrid && p.has("symmetric") && !Json.bool(p, "symmetric", true)) {
      out.add(
          new RecipeProblem(
              path + ".symmetric", method + " has a symmetric grid: symmetric must be true"));
    }
    JsonNode export = p.get("export");
    if (export == null || !symmetricGrid) {
      return;
    }
    for (int i = 0; i < export.size(); i++) {
      if (ExportFormat.parse(export.get(i).asText()).container()
          == ExportFormat.Container.COMPRESSED_TENSORS) {
        out.add(
            new RecipeProblem(
                path + ".export[" + i + "]",
                "compressed-tensors stores integer grids (rtn, gptq, awq), not " + method));
      }
    }
  }

  static QuantizeParams from(JsonNode p) {
    String method = Json.text(p, "method", "rtn");
    int bits = defaultBits(method, Json.integer(p, "bits", 0));
    int groupSize = Json.integer(p, "group_size", method.equals("fp8") ? -1 : 128);
    List<ExportFormat> export = new ArrayList<>();
    JsonNode e = p.get("export");
    if (e == null || e.isNull()) {
      export.add(new ExportFormat(ExportFormat.Container.SAFETENSORS, null));
    } else {
      e.forEach(n -> export.add(ExportFormat.parse(n.asText())));
    }
    return new QuantizeParams(
        Method.valueOf(method.toUpperCase(Locale.ROOT)),
        bits,
        groupSize,
        Json.bool(p, "symmetric", defaultSymmetric(method)),
        export);
  }

  /**
   * The one default grid of recipes and {@code compactor quantize}: symmetric, except awq, whose
   * scale search is defined with zero points (AutoAWQ's {@code zero_point: true}); fp8 and nf4 are
   * symmetric by construction.
   */
  public static boolean defaultSymmetric(String method) {
    return !method.equalsIgnoreCase("awq");
  }

  private static int defaultBits(String method, int given) {
    if (given != 0) {
      return given;
    }
    return method.equals("fp8") ? 8 : 4;
  }

  /** Whether this stage reads calibration activations. */
  public boolean needsCalibration() {
    return method == Method.GPTQ || method == Method.AWQ;
  }

  @Override
  public StageKind kind() {
    return StageKind.QUANTIZE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o =
        Json.object()
            .put("method", method.key())
            .put("bits", bits)
            .put("group_size", groupSize)
            .put("symmetric", symmetric);
    ArrayNode a = o.putArray("export");
    export.forEach(f -> a.add(f.toString()));
    return o;
  }
}
