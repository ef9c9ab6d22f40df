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
 * @param qat the training of method qat (null for every other method)
 * @param codebook the k-means settings of method codebook (null for every other method)
 */
public record QuantizeParams(
    Method method,
    int bits,
    int groupSize,
    boolean symmetric,
    List<ExportFormat> export,
    Qat qat,
    CodebookSpec codebook)
    implements StageParams {

  /** A method other than qat and codebook. */
  public QuantizeParams(
      Method method, int bits, int groupSize, boolean symmetric, List<ExportFormat> export) {
    this(method, bits, groupSize, symmetric, export, null, null);
  }

  /** Method qat (with {@code qat}) or another method but codebook (null). */
  public QuantizeParams(
      Method method,
      int bits,
      int groupSize,
      boolean symmetric,
      List<ExportFormat> export,
      Qat qat) {
    this(method, bits, groupSize, symmetric, export, qat, null);
  }

  /**
   * Codebook quantization ({@code method: codebook}, SqueezeLLM-style, as {@code compactor quantize
   * --method codebook}): {@code 2^bits} F16 centroids per output row of every decoder linear,
   * fitted by k-means weighted by each weight's sensitivity.
   *
   * @param sensitivity fisher (the Fisher diagonal from autograd on the calibration text), hessian
   *     (the layer inputs' Hessian diagonal) or uniform (no calibration)
   * @param exact solve each row's k-means exactly (a 1-D dynamic program) instead of by Lloyd
   * @param maxIterations Lloyd iterations per row at most
   */
  public record CodebookSpec(String sensitivity, boolean exact, int maxIterations) {
    public static final List<String> SENSITIVITIES = List.of("fisher", "hessian", "uniform");

    /** The defaults of {@code compactor quantize --method codebook}. */
    public static final CodebookSpec DEFAULTS = new CodebookSpec("fisher", true, 50);

    public CodebookSpec {
      if (!SENSITIVITIES.contains(sensitivity)) {
        throw new IllegalArgumentException(
            "codebook.sensitivity: expected one of " + SENSITIVITIES + ", found " + sensitivity);
      }
      if (maxIterations < 1) {
        throw new IllegalArgumentException(
            "codebook.max_iterations must be at least 1, found " + maxIterations);
      }
    }

    /** Whether the sensitivity reads calibration text. */
    public boolean calibrated() {
      return !sensitivity.equals("uniform");
    }

    ObjectNode toJson() {
      return Json.object()
          .put("sensitivity", sensitivity)
          .put("kmeans", exact ? "exact" : "lloyd")
          .put("max_iterations", maxIterations);
    }

    static CodebookSpec from(JsonNode c) {
      return new CodebookSpec(
          Json.text(c, "sensitivity", DEFAULTS.sensitivity()),
          Json.text(c, "kmeans", "exact").equals("exact"),
          Json.integer(c, "max_iterations", DEFAULTS.maxIterations()));
    }
  }

  /** Quantization algorithm. */
  public enum Method {
    RTN,
    GPTQ,
    AWQ,
    FP8,
    NF4,
    /** Per-row codebooks (non-uniform), a compactor-codebook checkpoint only Compactor loads. */
    CODEBOOK,
    /** Quantization-aware training (LSQ fake quantization) started from RTN or GPTQ. */
    QAT;

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
    if ((method == Method.QAT) != (qat != null)) {
      throw new IllegalArgumentException(
          method == Method.QAT
              ? "method qat needs its training settings (qat: { steps: N })"
              : "qat settings are for method qat only, found method " + method.key());
    }
    if (qat != null && !symmetric) {
      throw new IllegalArgumentException("not supported yet: asymmetric qat grids");
    }
    if ((method == Method.CODEBOOK) != (codebook != null)) {
      throw new IllegalArgumentException(
          method == Method.CODEBOOK
              ? "method codebook needs its settings (CodebookSpec.DEFAULTS for the defaults)"
              : "codebook settings are for method codebook only, found method " + method.key());
    }
    if ((bits == 2 || bits == 3) && method != Method.CODEBOOK) {
      throw new IllegalArgumentException(
          "bits " + bits + " is for method codebook only; " + method.key() + " takes 4 or 8");
    }
  }

  /** Where QAT starts: the grid and latent weights of round-to-nearest or of GPTQ. */
  public enum QatInit {
    RTN,
    GPTQ;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * Quantization-aware training ({@code method: qat}): the decoder linears are quantized by {@code
   * init}, then their latent weights and learned steps (LSQ, a straight-through estimator) are
   * trained through fake quantization against the stage's input model, loss {@code alpha · KL + (1
   * − alpha) · CE} at temperature 1, AdamW with warm-up over the first twentieth and cosine decay,
   * gradients clipped at 1 (as {@code compactor qat}).
   *
   * @param init where training starts
   * @param steps optimizer steps
   * @param lr peak learning rate
   * @param alpha weight of the KL term; the rest is next-token cross-entropy
   * @param batch windows per step
   * @param windows training windows drawn from the calibration text's training split
   * @param seqLen tokens per training window (capped by the model's context)
   */
  public record Qat(
      QatInit init, int steps, double lr, double alpha, int batch, int windows, int seqLen) {

    /** The defaults of {@code compactor qat}, for the keys a recipe leaves out. */
    public static Qat steps(int steps) {
      return new Qat(QatInit.RTN, steps, 1e-4, 0.9, 4, 512, 128);
    }

    public Qat {
      if (init == null) {
        throw new IllegalArgumentException("qat.init: expected rtn or gptq, found none");
      }
      if (steps < 1) {
        throw new IllegalArgumentException("qat.steps must be at least 1, found " + steps);
      }
      if (!(lr > 0 && lr < 1)) {
        throw new IllegalArgumentException("qat.lr must be in (0, 1), found " + lr);
      }
      if (!(alpha >= 0 && alpha <= 1)) {
        throw new IllegalArgumentException("qat.alpha must be in [0, 1], found " + alpha);
      }
      if (batch < 1 || windows < batch) {
        throw new IllegalArgumentException(
            "qat needs batch >= 1 and windows >= batch, found batch "
                + batch
                + ", windows "
                + windows);
      }
      if (seqLen < 2) {
        throw new IllegalArgumentException("qat.seq_len must be at least 2, found " + seqLen);
      }
    }

    ObjectNode toJson() {
      return Json.object()
          .put("init", init.key())
          .put("steps", steps)
          .put("lr", lr)
          .put("alpha", alpha)
          .put("batch", batch)
          .put("windows", windows)
          .put("seq_len", seqLen);
    }

    static Qat from(JsonNode q) {
      Qat d = steps(q.get("steps").asInt());
      return new Qat(
          QatInit.valueOf(Json.text(q, "init", d.init().key()).toUpperCase(Locale.ROOT)),
          d.steps(),
          Json.number(q, "lr", d.lr()),
          Json.number(q, "alpha", d.alpha()),
          Json.integer(q, "batch", d.batch()),
          Json.integer(q, "windows", d.windows()),
          Json.integer(q, "seq_len", d.seqLen()));
    }
  }

  static final ParamSchema.Type EXPORT_ITEM =
      ParamSchema.parsedText(ExportFormat.SPELLING, ExportFormat::parse);

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("quantize")
          .required(
              "method", ParamSchema.oneOf("rtn", "gptq", "awq", "fp8", "nf4", "qat", "codebook"))
          .optional("bits", ParamSchema.intOneOf(2, 3, 4, 8))
          .optional("group_size", ParamSchema.intOneOf(-1, 32, 64, 128))
          .optional("symmetric", ParamSchema.bool())
          .optional("export", ParamSchema.listOf(EXPORT_ITEM))
          .optional(
              "qat",
              ParamSchema.object("qat")
                  .optional("init", ParamSchema.oneOf("rtn", "gptq"))
                  .required("steps", ParamSchema.integerAtLeast(1))
                  .optional("lr", ParamSchema.number(0, false, 1, false))
                  .optional("alpha", ParamSchema.number(0, true, 1, true))
                  .optional("batch", ParamSchema.integerAtLeast(1))
                  .optional("windows", ParamSchema.integerAtLeast(1))
                  .optional("seq_len", ParamSchema.integerAtLeast(2)))
          .optional(
              "codebook",
              ParamSchema.object("codebook")
                  .optional("sensitivity", ParamSchema.oneOf("fisher", "hessian", "uniform"))
                  .optional("kmeans", ParamSchema.oneOf("exact", "lloyd"))
                  .optional("max_iterations", ParamSchema.integerAtLeast(1)));

  /** Checks that need more than one parameter; {@code p} already passed {@link #SCHEMA}. */
  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    String method = Json.text(p, "method", "");
    if (method.equals("codebook") || p.has("codebook")) {
      codebookCrossCheck(p, path, method, out);
      return;
    }
    int lowBits = Json.integer(p, "bits", 4);
    if (lowBits == 2 || lowBits == 3) {
      out.add(
          new RecipeProblem(
              path + ".bits",
              "bits "
                  + lowBits
                  + " is for method codebook only; "
                  + method
                  + " takes 4 or 8 (no exported form here stores a 2- or 3-bit integer grid;"
                  + " ./compactor qat --bits 2|3 --compare evaluates RTN, GPTQ and QAT there)"));
      return;
    }
    if (method.equals("qat") || p.has("qat")) {
      qatCrossCheck(p, path, method, out);
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

  /**
   * Method qat: its {@code qat} block (and only with it), a symmetric grid, and exports the learned
   * grid maps onto: GGUF as Q4_0 (4 bits) or Q8_0 (8 bits) only.
   */
  private static void qatCrossCheck(
      JsonNode p, String path, String method, List<RecipeProblem> out) {
    if (!method.equals("qat")) {
      out.add(
          new RecipeProblem(
              path + ".qat", "qat settings are for method qat only, found method " + method));
      return;
    }
    if (!p.has("qat")) {
      out.add(
          new RecipeProblem(
              path + ".qat",
              "method qat needs its training settings: qat: { steps: N } (also init, lr, alpha,"
                  + " batch, windows, seq_len)"));
      return;
    }
    if (p.has("symmetric") && !Json.bool(p, "symmetric", true)) {
      out.add(
          new RecipeProblem(
              path + ".symmetric",
              "not supported yet: asymmetric qat grids (LSQ learns one step per group, no zero"
                  + " point); leave symmetric out or true"));
    }
    JsonNode q = p.get("qat");
    if (Json.integer(q, "batch", 4) > Json.integer(q, "windows", 512)) {
      out.add(
          new RecipeProblem(
              path + ".qat.batch",
              "batch "
                  + Json.integer(q, "batch", 4)
                  + " is more than windows "
                  + Json.integer(q, "windows", 512)
                  + "; a step draws batch windows"));
    }
    int bits = Json.integer(p, "bits", 4);
    String gguf = bits == 8 ? "q8_0" : "q4_0";
    JsonNode export = p.get("export");
    for (int i = 0; export != null && i < export.size(); i++) {
      ExportFormat f = ExportFormat.parse(export.get(i).asText());
      if (f.container() == ExportFormat.Container.GGUF
          && f.ggufType() != null
          && !f.ggufType().equals(gguf)) {
        out.add(
            new RecipeProblem(
                path + ".export[" + i + "]",
                "not supported yet: qat export to gguf:"
                    + f.ggufType()
                    + "; a "
                    + bits
                    + "-bit learned grid maps onto ggml's "
                    + gguf
                    + " blocks only (write gguf or gguf:"
                    + gguf
                    + ")"));
      }
    }
  }

  /**
   * Method codebook: 2, 3 or 4 bits, one codebook per output row (no group_size, no symmetric),
   * stored only as the compactor-codebook safetensors checkpoint.
   */
  private static void codebookCrossCheck(
      JsonNode p, String path, String method, List<RecipeProblem> out) {
    if (!method.equals("codebook")) {
      out.add(
          new RecipeProblem(
              path + ".codebook",
              "codebook settings are for method codebook only, found method " + method));
      return;
    }
    if (Json.integer(p, "bits", 4) == 8) {
      out.add(
          new RecipeProblem(
              path + ".bits",
              "codebook takes bits 2, 3 or 4 (at most 16 centroids per row), found 8"));
    }
    for (String key : new String[] {"group_size", "symmetric"}) {
      if (p.has(key)) {
        out.add(
            new RecipeProblem(
                path + "." + key,
                "codebook keeps one codebook of 2^bits centroids per output row: leave "
                    + key
                    + " out"));
      }
    }
    JsonNode export = p.get("export");
    for (int i = 0; export != null && i < export.size(); i++) {
      ExportFormat f = ExportFormat.parse(export.get(i).asText());
      if (f.container() != ExportFormat.Container.SAFETENSORS) {
        out.add(
            new RecipeProblem(
                path + ".export[" + i + "]",
                "not supported: codebook quantization exported as "
                    + f
                    + " (GGUF and compressed-tensors have no per-row codebook format; the"
                    + " compactor-codebook checkpoint is written as safetensors and read by"
                    + " Compactor only)"));
      }
    }
  }

  static QuantizeParams from(JsonNode p) {
    String method = Json.text(p, "method", "rtn");
    int bits = defaultBits(method, Json.integer(p, "bits", 0));
    int groupSize =
        Json.integer(p, "group_size", method.equals("fp8") || method.equals("codebook") ? -1 : 128);
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
        export,
        p.hasNonNull("qat") ? Qat.from(p.get("qat")) : null,
        method.equals("codebook")
            ? CodebookSpec.from(p.hasNonNull("codebook") ? p.get("codebook") : Json.object())
            : null);
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

  /**
   * Whether this stage reads calibration text (activations, QAT's training windows, a codebook's
   * Fisher or Hessian sensitivity).
   */
  public boolean needsCalibration() {
    return method == Method.GPTQ
        || method == Method.AWQ
        || method == Method.QAT
        || (codebook != null && codebook.calibrated());
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
    if (qat != null) {
      o.set("qat", qat.toJson());
    }
    if (codebook != null) {
      // one codebook per row: group_size and symmetric mean nothing here
      o.remove("group_size");
      o.remove("symmetric");
      o.set("codebook", codebook.toJson());
    }
    return o;
  }
}
