package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.io.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Layer-dropping distillation: a student built from a subset of the teacher's decoder layers is
 * trained to match the teacher's token distribution on the calibration text.
 *
 * @param layers teacher layer indices the student keeps, ascending; empty when {@code keepLayers}
 *     is used
 * @param keepLayers number of evenly spaced teacher layers to keep; 0 when {@code layers} is used
 * @param temperature softmax temperature of the distillation loss, > 0
 * @param alpha weight of the KL term against the next-token cross-entropy term, in [0, 1]
 * @param steps optimizer steps
 * @param lr learning rate
 * @param checkpointEvery write a resumable checkpoint every this many steps; 0 for only the end
 * @param dtype storage type of the student's weights (F32, F16 or BF16); null keeps the input
 *     model's
 * @param depth what is added to logit KD: a hidden-state loss or a cached teacher top-k
 * @param lora LoRA recovery instead of layer dropping (null: a layer-dropped student): a rank-r
 *     adapter is trained on the frozen input model against the baseline and merged into it
 */
public record DistillParams(
    List<Integer> layers,
    int keepLayers,
    double temperature,
    double alpha,
    int steps,
    double lr,
    int checkpointEvery,
    DType dtype,
    Depth depth,
    Lora lora)
    implements StageParams {

  /**
   * {@code distill: {lora: {...}}}: LoRA recovery of the input model (see {@link
   * dev.compactor.core.lora.LoraRecovery}). The adapter is trained over the frozen input against
   * the job's baseline on the calibration text, stored as a PEFT directory ({@code adapter/}) with
   * the stage's artifact, and merged into the weights the next stages read: with a pruned input the
   * delta is masked to its non-zeros, so the merged model keeps exactly its zeros.
   *
   * @param rank r
   * @param alpha PEFT's {@code lora_alpha} (the delta is scaled by alpha / r)
   * @param targets module names of the adapted decoder linears
   * @param merge merge the adapter into the output weights; false is refused in recipes (the next
   *     stages read weights, not base + adapter)
   * @param batch windows per optimizer step
   */
  public record Lora(int rank, double alpha, List<String> targets, boolean merge, int batch) {

    /** Seed of the adapter's initialisation and the data order. */
    public static final long SEED = 1234;

    public Lora {
      targets = List.copyOf(targets);
      if (batch < 1) {
        throw new IllegalArgumentException("lora.batch must be at least 1, found " + batch);
      }
      spec(rank, alpha, targets);
    }

    /** The adapter's shape as {@code compactor lora} takes it. */
    public dev.compactor.core.lora.LoraSpec spec() {
      return spec(rank, alpha, targets);
    }

    private static dev.compactor.core.lora.LoraSpec spec(
        int rank, double alpha, List<String> targets) {
      return new dev.compactor.core.lora.LoraSpec(rank, (float) alpha, targets, SEED);
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("lora")
            .optional("rank", ParamSchema.integerAtLeast(1))
            .optional("alpha", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
            .optional("targets", ParamSchema.listOf(ParamSchema.text()))
            .optional("merge", ParamSchema.bool())
            .optional("batch", ParamSchema.integerAtLeast(1));

    static Lora from(JsonNode l) {
      List<String> targets = new ArrayList<>();
      if (l.has("targets")) {
        l.get("targets").forEach(n -> targets.add(n.asText()));
      } else {
        targets.addAll(dev.compactor.core.lora.LoraSpec.DEFAULT_TARGETS);
      }
      return new Lora(
          Json.integer(l, "rank", 8),
          Json.number(l, "alpha", 16),
          targets,
          Json.bool(l, "merge", true),
          Json.integer(l, "batch", 4));
    }

    ObjectNode toJson() {
      ObjectNode o = Json.object().put("rank", rank).put("alpha", alpha);
      targets.forEach(o.putArray("targets")::add);
      return o.put("merge", merge).put("batch", batch);
    }
  }

  /** Layer dropping with a hidden-state loss or top-k cache, as before LoRA recovery existed. */
  public DistillParams(
      List<Integer> layers,
      int keepLayers,
      double temperature,
      double alpha,
      int steps,
      double lr,
      int checkpointEvery,
      DType dtype,
      Depth depth) {
    this(layers, keepLayers, temperature, alpha, steps, lr, checkpointEvery, dtype, depth, null);
  }

  /**
   * {@code hidden_loss} (mse|cosine, null: none) with weight {@code hidden_weight}, and {@code
   * teacher_topk} (0: a full teacher pass every step).
   */
  public record Depth(String hiddenLoss, double hiddenWeight, int teacherTopk) {
    public static final Depth NONE = new Depth(null, 1.0, 0);

    public Depth {
      if (hiddenLoss != null && !hiddenLoss.equals("mse") && !hiddenLoss.equals("cosine")) {
        throw new IllegalArgumentException(
            "hidden_loss must be mse or cosine, found " + hiddenLoss);
      }
      if (!(hiddenWeight > 0)) {
        throw new IllegalArgumentException("hidden_weight must be > 0, found " + hiddenWeight);
      }
      if (teacherTopk < 0) {
        throw new IllegalArgumentException("teacher_topk must be >= 1, found " + teacherTopk);
      }
    }
  }

  /** Plain logit KD, as before hidden-state and top-k options existed. */
  public DistillParams(
      List<Integer> layers,
      int keepLayers,
      double temperature,
      double alpha,
      int steps,
      double lr,
      int checkpointEvery,
      DType dtype) {
    this(layers, keepLayers, temperature, alpha, steps, lr, checkpointEvery, dtype, Depth.NONE);
  }

  /** The recipe spellings of {@code dtype}. */
  static final Map<String, DType> DTYPES =
      Map.of("f32", DType.F32, "f16", DType.F16, "bf16", DType.BF16);

  public DistillParams {
    layers = List.copyOf(layers);
    depth = depth == null ? Depth.NONE : depth;
    if (lora != null) {
      if (!layers.isEmpty() || keepLayers != 0 || dtype != null || depth != Depth.NONE) {
        throw new IllegalArgumentException(
            "lora keeps every layer and the input's dtype: no layers, keep_layers, dtype or depth");
      }
    } else if (layers.isEmpty() == (keepLayers == 0)) {
      throw new IllegalArgumentException("give exactly one of layers and keep_layers");
    }
    if (dtype != null && !DTYPES.containsValue(dtype)) {
      throw new IllegalArgumentException("dtype must be F32, F16 or BF16, found " + dtype);
    }
  }

  /**
   * The type to store the student as: the recipe's {@code dtype}, else the input's own when it is
   * F16 or BF16, else F32. A distilled BF16 model stays BF16 rather than doubling in size.
   */
  public DType storeAs(DType input) {
    if (dtype != null) {
      return dtype;
    }
    return input == DType.F16 || input == DType.BF16 ? input : DType.F32;
  }

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("distill")
          .optional("layers", ParamSchema.listOf(ParamSchema.integerAtLeast(0)))
          .optional("keep_layers", ParamSchema.integerAtLeast(1))
          .optional("temperature", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
          .optional("alpha", ParamSchema.number(0, true, 1, true))
          .optional("steps", ParamSchema.integerAtLeast(1))
          .optional("lr", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
          .optional("checkpoint_every", ParamSchema.integerAtLeast(1))
          .optional("dtype", ParamSchema.oneOf("f32", "f16", "bf16"))
          .optional("hidden_loss", ParamSchema.oneOf("mse", "cosine"))
          .optional("hidden_weight", ParamSchema.number(0, false, Double.POSITIVE_INFINITY, false))
          .optional("teacher_topk", ParamSchema.integerAtLeast(1))
          .optional("lora", Lora.SCHEMA);

  /** Keys of layer-dropping distillation that a LoRA recovery has no use for. */
  static final List<String> NOT_WITH_LORA =
      List.of("layers", "keep_layers", "dtype", "hidden_loss", "hidden_weight", "teacher_topk");

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    if (p != null && p.has("lora")) {
      for (String k : NOT_WITH_LORA) {
        if (p.has(k)) {
          out.add(
              new RecipeProblem(
                  path + "." + k,
                  "not supported with lora (LoRA recovery keeps every layer of the input and"
                      + " its dtype, and trains on logit KL)"));
        }
      }
      try {
        Lora.from(p.get("lora"));
      } catch (IllegalArgumentException e) {
        out.add(new RecipeProblem(path + ".lora", e.getMessage()));
      }
      checkpointEvery(p, path, out);
      return;
    }
    boolean hasLayers = p != null && p.has("layers");
    boolean hasKeep = p != null && p.has("keep_layers");
    if (hasLayers == hasKeep) {
      out.add(
          new RecipeProblem(
              path,
              hasLayers
                  ? "give either layers or keep_layers, not both"
                  : "missing; distill needs layers (teacher layer indices) or keep_layers (a"
                      + " count)"));
    }
    if (hasLayers) {
      JsonNode l = p.get("layers");
      for (int i = 1; i < l.size(); i++) {
        if (l.get(i).asInt() <= l.get(i - 1).asInt()) {
          out.add(
              new RecipeProblem(
                  path + ".layers[" + i + "]",
                  "layer indices must be strictly ascending, found "
                      + l.get(i).asInt()
                      + " after "
                      + l.get(i - 1).asInt()));
        }
      }
    }
    if (p != null && p.has("teacher_topk") && (p.has("hidden_loss") || p.has("hidden_weight"))) {
      out.add(
          new RecipeProblem(
              path + ".teacher_topk",
              "not supported yet together with hidden_loss (the teacher's hidden states are not"
                  + " cached)"));
    }
    if (p != null && p.has("hidden_weight") && !p.has("hidden_loss")) {
      out.add(new RecipeProblem(path + ".hidden_weight", "needs hidden_loss (mse or cosine)"));
    }
    checkpointEvery(p, path, out);
  }

  private static void checkpointEvery(JsonNode p, String path, List<RecipeProblem> out) {
    if (p != null && p.has("checkpoint_every") && p.has("steps")) {
      if (Json.integer(p, "checkpoint_every", 0) > Json.integer(p, "steps", 0)) {
        out.add(
            new RecipeProblem(
                path + ".checkpoint_every",
                "is larger than steps, so no checkpoint would be written"));
      }
    }
  }

  static DistillParams from(JsonNode p) {
    if (p.has("lora")) {
      // compactor lora's defaults: pure KL at temperature 1 (it closed twice the gap KL + CE did
      // on both reference models, see cli/docs/lora.md) and a LoRA-sized learning rate
      return new DistillParams(
          List.of(),
          0,
          Json.number(p, "temperature", 1.0),
          Json.number(p, "alpha", 1.0),
          Json.integer(p, "steps", 200),
          Json.number(p, "lr", 1e-3),
          Json.integer(p, "checkpoint_every", 0),
          null,
          Depth.NONE,
          Lora.from(p.get("lora")));
    }
    List<Integer> layers = new ArrayList<>();
    if (p.has("layers")) {
      p.get("layers").forEach(n -> layers.add(n.asInt()));
    }
    return new DistillParams(
        layers,
        Json.integer(p, "keep_layers", 0),
        Json.number(p, "temperature", 2.0),
        Json.number(p, "alpha", 0.5),
        Json.integer(p, "steps", 200),
        Json.number(p, "lr", 1e-4),
        Json.integer(p, "checkpoint_every", 0),
        p.has("dtype") ? DTYPES.get(p.get("dtype").asText()) : null,
        new Depth(
            p.has("hidden_loss") ? p.get("hidden_loss").asText() : null,
            Json.number(p, "hidden_weight", 1.0),
            Json.integer(p, "teacher_topk", 0)));
  }

  @Override
  public StageKind kind() {
    return StageKind.DISTILL;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object();
    if (lora != null) {
      o.set("lora", lora.toJson());
    } else if (layers.isEmpty()) {
      o.put("keep_layers", keepLayers);
    } else {
      layers.forEach(o.putArray("layers")::add);
    }
    o.put("temperature", temperature).put("alpha", alpha).put("steps", steps).put("lr", lr);
    if (checkpointEvery > 0) {
      o.put("checkpoint_every", checkpointEvery);
    }
    if (dtype != null) {
      o.put("dtype", dtype.safetensorsName().toLowerCase(Locale.ROOT));
    }
    if (depth.hiddenLoss() != null) {
      o.put("hidden_loss", depth.hiddenLoss()).put("hidden_weight", depth.hiddenWeight());
    }
    if (depth.teacherTopk() > 0) {
      o.put("teacher_topk", depth.teacherTopk());
    }
    return o;
  }
}
