package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.data.Corpus;
import dev.compactor.core.distill.DistillationSpec;
import dev.compactor.core.prune.NmPattern;
import dev.compactor.core.prune.PruningOutput;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.depth.DepthMethod;
import dev.compactor.core.prune.structured.StructuredSpec;
import dev.compactor.core.tokenizer.TextTokenizer;
import java.util.List;
import java.util.Locale;

/**
 * Pruning: zero the given fraction of each linear layer's weights (unstructured), keep N of every M
 * consecutive inputs (semi-structured {@code pattern: "2:4"}), or keep {@code experts.keep} experts
 * of every mixture-of-experts layer ({@code experts: {keep: 6, method: frequency}}), or remove
 * whole attention heads and MLP channels ({@code structured: {heads: 0.25, channels: 0.25,
 * importance: activation|fluctuation, head_mode: kv_groups|query_heads, compensate: false}}). Or
 * remove whole decoder layers ({@code depth: {drop: 2, method: angular}}). Or split every dense MLP
 * into routed experts ({@code moefy: {experts: 8, k: 2}}). Exactly one of sparsity, pattern,
 * experts, structured, depth and moefy.
 *
 * @param method how weights are scored: by magnitude, by Wanda's |w|·‖x‖, or by SparseGPT's OBS
 *     saliency with weight updates (both need calibration); null with {@code experts}, which
 *     carries its own method
 * @param sparsity fraction of weights zeroed, strictly between 0 and 1; {@code 1 - N/M} with a
 *     pattern; NaN with {@code experts}
 * @param pattern the N:M pattern, or null for unstructured pruning
 * @param experts expert pruning or merging, or null for weight pruning
 * @param structured head and channel removal, or null (then method, sparsity and pattern as for
 *     experts: null, NaN, null)
 * @param output how the pruned weights are stored ({@code format}) and SparseGPT's joint
 *     quantization ({@code wbits}, {@code group_size}); {@link PruningOutput#DENSE} by default
 * @param depth depth pruning ({@code depth: {drop: n, method: block_influence|angular}}): remove
 *     whole decoder layers; null otherwise. Like structured, it excludes every other option
 * @param recovery distillation from the unpruned model after pruning ({@code recovery: {steps, lr,
 *     ...}}), or null for none; with weight pruning and {@code rounds > 1} the sparsity is reached
 *     in rounds of the cubic schedule with recovery after each
 * @param moefy MoEfication ({@code moefy: {experts: E, k: K, clustering: activations}}): split
 *     every dense MLP into E experts with a trained top-k router; null otherwise. Like depth, it
 *     excludes every other option
 */
public record PruneParams(
    Method method,
    double sparsity,
    NmPattern pattern,
    Experts experts,
    StructuredSpec structured,
    PruningOutput output,
    Depth depth,
    Recovery recovery,
    Moefy moefy)
    implements StageParams {

  /** Weight-scoring rule. */
  public enum Method {
    MAGNITUDE,
    WANDA,
    SPARSEGPT;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** How the experts to keep are chosen, from calibration statistics of the model's own routing. */
  public enum ExpertMethod {
    /** Keep the experts most often in a token's top-k. */
    FREQUENCY,
    /** Keep the experts with the highest mean routing weight × output norm. */
    WEIGHTED_NORM,
    /** Merge every layer's experts into {@code keep} groups around the most frequent ones. */
    MERGE;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * Expert pruning or merging of a mixture-of-experts model.
   *
   * @param keep experts left in every MoE layer, at least 1 (below the model's count: checked
   *     against the model by {@link RecipeModelCheck})
   */
  public record Experts(int keep, ExpertMethod method) {
    public Experts {
      if (keep < 1) {
        throw new IllegalArgumentException("experts.keep must be at least 1, found " + keep);
      }
      if (method == null) {
        throw new IllegalArgumentException("experts.method: expected one, found none");
      }
    }

    ObjectNode toJson() {
      return Json.object().put("keep", keep).put("method", method.key());
    }
  }

  /**
   * Depth pruning: remove {@code drop} decoder layers chosen by {@code method} from layer scores on
   * the calibration text.
   *
   * @param drop layers removed, at least 1 (below the model's count: checked against the model by
   *     {@link RecipeModelCheck})
   */
  public record Depth(int drop, DepthMethod method) {
    public Depth {
      if (drop < 1) {
        throw new IllegalArgumentException("depth.drop must be at least 1, found " + drop);
      }
      if (method == null) {
        throw new IllegalArgumentException("depth.method: expected one, found none");
      }
    }

    ObjectNode toJson() {
      return Json.object().put("drop", drop).put("method", method.key());
    }
  }

  /** How MoEfication groups a layer's MLP neurons into experts. */
  public enum MoefyClustering {
    /** Balanced k-means on the neurons' activation patterns over calibration tokens. */
    ACTIVATIONS,
    /** Balanced k-means on the gate/up weight rows. */
    WEIGHTS,
    /** A seeded random balanced split (the baseline). */
    RANDOM;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    static MoefyClustering parse(String s) {
      return valueOf(s.toUpperCase(Locale.ROOT));
    }
  }

  /**
   * MoEfication of a dense model: every MLP split into {@code experts} equal experts and a linear
   * router per layer, trained on calibration tokens, that runs {@code k} of them per token.
   *
   * @param experts E, at least 2 (dividing the model's intermediate size: checked against the model
   *     by {@link RecipeModelCheck})
   * @param k experts per token, 1..E-1
   * @param clustering how neurons are grouped
   * @param routerSteps router optimizer steps per layer
   */
  public record Moefy(int experts, int k, MoefyClustering clustering, int routerSteps) {
    /** Router steps when the recipe gives none (as {@code compactor moefy}). */
    public static final int DEFAULT_ROUTER_STEPS = 300;

    public Moefy {
      if (experts < 2) {
        throw new IllegalArgumentException("moefy.experts must be at least 2, found " + experts);
      }
      if (k < 1 || k >= experts) {
        throw new IllegalArgumentException(
            "moefy.k must be in 1.." + (experts - 1) + " (experts - 1), found " + k);
      }
      if (clustering == null) {
        throw new IllegalArgumentException("moefy.clustering: expected one, found none");
      }
      if (routerSteps < 1) {
        throw new IllegalArgumentException(
            "moefy.router_steps must be at least 1, found " + routerSteps);
      }
    }

    ObjectNode toJson() {
      return Json.object()
          .put("experts", experts)
          .put("k", k)
          .put("clustering", clustering.key())
          .put("router_steps", routerSteps);
    }

    static Moefy from(JsonNode m) {
      return new Moefy(
          m.get("experts").asInt(),
          m.get("k").asInt(),
          MoefyClustering.parse(Json.text(m, "clustering", "activations")),
          Json.integer(m, "router_steps", DEFAULT_ROUTER_STEPS));
    }
  }

  /**
   * Recovery by distillation from the unpruned model (KL only, temperature 1), with every pruned
   * zero, removed head or dropped layer kept as it is; the pruning stage keeps the recovered model
   * only when it is closer to the unpruned one on held-out windows of the calibration text's
   * validation split.
   *
   * @param steps optimizer steps in all (split evenly between the rounds)
   * @param lr peak learning rate (warm-up over the first tenth of each round, then cosine)
   * @param batch windows per step
   * @param rounds 1 for one-shot pruning then recovery; more for iterative pruning (unstructured
   *     sparsity only)
   * @param windows training windows drawn from the calibration text
   * @param seqLen tokens per training window
   */
  public record Recovery(int steps, double lr, int batch, int rounds, int windows, int seqLen) {

    /** Data-order seed of the recovery runs. */
    static final long SEED = 1234;

    public Recovery {
      if (steps < 1) {
        throw new IllegalArgumentException("recovery.steps must be at least 1, found " + steps);
      }
      if (!(lr > 0 && lr < 1)) {
        throw new IllegalArgumentException("recovery.lr must be in (0, 1), found " + lr);
      }
      if (batch < 1 || windows < batch) {
        throw new IllegalArgumentException(
            "recovery needs batch >= 1 and windows >= batch, found batch "
                + batch
                + ", windows "
                + windows);
      }
      if (rounds < 1 || rounds > steps) {
        throw new IllegalArgumentException(
            "recovery.rounds must be in [1, steps], found " + rounds + " for " + steps + " steps");
      }
      if (seqLen < 2) {
        throw new IllegalArgumentException("recovery.seq_len must be at least 2, found " + seqLen);
      }
    }

    /** The settings recipes get when they give only {@code steps}. */
    public static Recovery steps(int steps) {
      return new Recovery(steps, 1e-4, 4, 1, 256, 128);
    }

    /** The distillation each round runs. */
    public DistillationSpec perRound() {
      int each = steps / rounds;
      return new DistillationSpec(
          1f, 1f, each, batch, (float) lr, Math.max(0, each / 10), 0f, 1f, 0, SEED);
    }

    /** Windows of the validation split a recovered model is checked on. */
    public static final int HELD_OUT_WINDOWS = 16;

    /**
     * Recovery's data: training windows ({@code windows} of {@code seq_len + 1} tokens, or fewer
     * tokens when the model's context is shorter) from {@code corpus}'s training split, and
     * held-out windows from its validation split, empty when that split is too short to check on.
     */
    public RecoveryWindows windows(Corpus corpus, TextTokenizer tokenizer, int maxPositions) {
      int seq = Math.min(seqLen, maxPositions - 1);
      List<int[]> train = corpus.calibrationSamples(tokenizer, windows, seq + 1, SEED + 1);
      List<int[]> heldOut;
      String note = null;
      try {
        heldOut = corpus.validationSamples(tokenizer, HELD_OUT_WINDOWS, seq + 1, SEED + 2);
      } catch (IllegalArgumentException tooShort) {
        heldOut = List.of();
        note = "recovery is not checked on held-out text: " + tooShort.getMessage();
      }
      return new RecoveryWindows(train, heldOut, seq, note);
    }

    ObjectNode toJson() {
      return Json.object()
          .put("steps", steps)
          .put("lr", lr)
          .put("batch", batch)
          .put("rounds", rounds)
          .put("windows", windows)
          .put("seq_len", seqLen);
    }

    static Recovery from(JsonNode r) {
      Recovery d = steps(r.get("steps").asInt());
      return new Recovery(
          d.steps(),
          Json.number(r, "lr", d.lr()),
          Json.integer(r, "batch", d.batch()),
          Json.integer(r, "rounds", d.rounds()),
          Json.integer(r, "windows", d.windows()),
          Json.integer(r, "seq_len", d.seqLen()));
    }
  }

  /**
   * The windows recovery trains and is checked on.
   *
   * @param seq tokens each window feeds the model
   * @param note why {@code heldOut} is empty, or null
   */
  public record RecoveryWindows(List<int[]> train, List<int[]> heldOut, int seq, String note) {}

  /** This pruning followed by {@code recovery} (null for none). */
  public PruneParams withRecovery(Recovery recovery) {
    return new PruneParams(
        method, sparsity, pattern, experts, structured, output, depth, recovery, moefy);
  }

  /** Every option but MoEfication. */
  public PruneParams(
      Method method,
      double sparsity,
      NmPattern pattern,
      Experts experts,
      StructuredSpec structured,
      PruningOutput output,
      Depth depth,
      Recovery recovery) {
    this(method, sparsity, pattern, experts, structured, output, depth, recovery, null);
  }

  /** MoEfication. */
  public static PruneParams moefy(Moefy moefy) {
    return new PruneParams(
        null, Double.NaN, null, null, null, PruningOutput.DENSE, null, null, moefy);
  }

  /** Weight, expert or structured pruning (no depth). */
  public PruneParams(
      Method method,
      double sparsity,
      NmPattern pattern,
      Experts experts,
      StructuredSpec structured,
      PruningOutput output) {
    this(method, sparsity, pattern, experts, structured, output, null, null);
  }

  /** Depth pruning. */
  public static PruneParams depth(int drop, DepthMethod method) {
    return new PruneParams(
        null, Double.NaN, null, null, null, PruningOutput.DENSE, new Depth(drop, method), null);
  }

  /** Weight or expert pruning stored dense. */
  public PruneParams(Method method, double sparsity, NmPattern pattern, Experts experts) {
    this(method, sparsity, pattern, experts, null, PruningOutput.DENSE);
  }

  /** Weight pruning stored as {@code output} says. */
  public PruneParams(
      Method method, double sparsity, NmPattern pattern, Experts experts, PruningOutput output) {
    this(method, sparsity, pattern, experts, null, output);
  }

  public PruneParams {
    if (output == null) {
      output = PruningOutput.DENSE;
    }
    if ((experts != null || structured != null) && !output.equals(PruningOutput.DENSE)) {
      throw new IllegalArgumentException(
          (experts != null ? "expert" : "structured")
              + " pruning takes no format or wbits, found "
              + output);
    }
    if (recovery != null) {
      if (experts != null) {
        throw new IllegalArgumentException("not supported yet: recovery after expert pruning");
      }
      if (!output.equals(PruningOutput.DENSE)) {
        throw new IllegalArgumentException(
            "not supported yet: recovery with a sparse format or joint quantization ("
                + output
                + "); recover dense, then add a quantize stage");
      }
      if (recovery.rounds() > 1 && (depth != null || structured != null || pattern != null)) {
        throw new IllegalArgumentException(
            "recovery.rounds > 1 (iterative pruning) needs unstructured sparsity");
      }
    }
    if (moefy != null) {
      if (depth != null
          || structured != null
          || experts != null
          || recovery != null
          || method != null
          || pattern != null
          || !Double.isNaN(sparsity)
          || !output.equals(PruningOutput.DENSE)) {
        throw new IllegalArgumentException(
            "moefication takes no method, sparsity, pattern, experts, structured, depth, format,"
                + " wbits or recovery");
      }
    } else if (depth != null) {
      if (structured != null
          || experts != null
          || method != null
          || pattern != null
          || !Double.isNaN(sparsity)
          || !output.equals(PruningOutput.DENSE)) {
        throw new IllegalArgumentException(
            "depth pruning takes no method, sparsity, pattern, experts, structured, format or"
                + " wbits");
      }
    } else if (structured != null) {
      if (experts != null || method != null || pattern != null || !Double.isNaN(sparsity)) {
        throw new IllegalArgumentException(
            "structured pruning takes no method, sparsity, pattern or experts");
      }
    } else if (experts != null) {
      if (method != null || pattern != null || !Double.isNaN(sparsity)) {
        throw new IllegalArgumentException(
            "expert pruning takes no method, sparsity or pattern, found "
                + method
                + ", "
                + sparsity
                + ", "
                + pattern);
      }
    } else {
      checkWeightPruning(method, sparsity, pattern);
      output.check(
          new PruningSpec(
              PruningSpec.Method.valueOf(method.name()),
              sparsity,
              PruningSpec.Granularity.PER_OUTPUT_ROW,
              java.util.EnumSet.allOf(PruningSpec.Linear.class),
              pattern));
    }
  }

  private static void checkWeightPruning(Method method, double sparsity, NmPattern pattern) {
    if (method == null) {
      throw new IllegalArgumentException("method: expected one, found none");
    }
    if (!(sparsity > 0 && sparsity < 1)) {
      throw new IllegalArgumentException("sparsity must be in (0, 1), found " + sparsity);
    }
    if (pattern != null && Math.abs(sparsity - pattern.sparsity()) > 1e-12) {
      throw new IllegalArgumentException(
          "pattern "
              + pattern
              + " fixes the sparsity at "
              + pattern.sparsity()
              + ", found "
              + sparsity);
    }
  }

  /** Unstructured pruning. */
  public PruneParams(Method method, double sparsity) {
    this(method, sparsity, null, null);
  }

  /** Unstructured or N:M pruning. */
  public PruneParams(Method method, double sparsity, NmPattern pattern) {
    this(method, sparsity, pattern, null);
  }

  /** Structured pruning of heads and MLP channels. */
  public static PruneParams structured(StructuredSpec spec) {
    return new PruneParams(null, Double.NaN, null, null, spec, PruningOutput.DENSE);
  }

  /** Expert pruning or merging. */
  public static PruneParams experts(int keep, ExpertMethod method) {
    return new PruneParams(null, Double.NaN, null, new Experts(keep, method));
  }

  static final ParamSchema.Type PATTERN =
      ParamSchema.parsedText(
          "an N:M pattern with 1 <= N < M, e.g. \"2:4\" or \"4:8\"", NmPattern::parse);

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("prune")
          .optional("method", ParamSchema.oneOf("magnitude", "wanda", "sparsegpt"))
          .optional("sparsity", ParamSchema.number(0, false, 1, false))
          .optional("pattern", PATTERN)
          .optional("format", ParamSchema.oneOf("dense", "sparse-24-bitmask", "sparse-bitmask"))
          .optional("wbits", ParamSchema.intOneOf(4, 8))
          .optional("group_size", ParamSchema.integerAtLeast(0))
          .optional("symmetric", ParamSchema.bool())
          .optional(
              "experts",
              ParamSchema.object("experts")
                  .required("keep", ParamSchema.integerAtLeast(1))
                  .required("method", ParamSchema.oneOf("frequency", "weighted_norm", "merge")))
          .optional(
              "structured",
              ParamSchema.object("structured")
                  .optional("heads", ParamSchema.number(0, true, 1, false))
                  .optional("channels", ParamSchema.number(0, true, 1, false))
                  .optional("importance", ParamSchema.oneOf("activation", "fluctuation"))
                  .optional("head_mode", ParamSchema.oneOf("kv_groups", "query_heads"))
                  .optional("compensate", ParamSchema.bool())
                  .optional("widths", ParamSchema.oneOf("uniform", "per_layer")))
          .optional(
              "moefy",
              ParamSchema.object("moefy")
                  .required("experts", ParamSchema.integerAtLeast(2))
                  .required("k", ParamSchema.integerAtLeast(1))
                  .optional("clustering", ParamSchema.oneOf("activations", "weights", "random"))
                  .optional("router_steps", ParamSchema.integerAtLeast(1)))
          .optional(
              "depth",
              ParamSchema.object("depth")
                  .required("drop", ParamSchema.integerAtLeast(1))
                  .optional("method", ParamSchema.oneOf("block_influence", "angular")))
          .optional(
              "recovery",
              ParamSchema.object("recovery")
                  .required("steps", ParamSchema.integerAtLeast(1))
                  .optional("lr", ParamSchema.number(0, false, 1, false))
                  .optional("batch", ParamSchema.integerAtLeast(1))
                  .optional("rounds", ParamSchema.integerAtLeast(1))
                  .optional("windows", ParamSchema.integerAtLeast(1))
                  .optional("seq_len", ParamSchema.integerAtLeast(2)));

  /**
   * Exactly one of sparsity, pattern and experts; no weight-scoring method with experts. {@code p}
   * already passed {@link #SCHEMA}.
   */
  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    if (p.has("moefy")) {
      JsonNode m = p.get("moefy");
      for (java.util.Iterator<String> it = p.fieldNames(); it.hasNext(); ) {
        String other = it.next();
        if (!other.equals("moefy")) {
          out.add(
              new RecipeProblem(
                  child(path, other),
                  "moefy splits whole MLPs into experts and takes no "
                      + other
                      + " (prune is listed once: MoEfy a dense model, or prune it in another"
                      + " job first)"));
        }
      }
      if (m.get("k").asInt() >= m.get("experts").asInt()) {
        out.add(
            new RecipeProblem(
                child(path, "moefy.k"),
                "runs "
                    + m.get("k").asInt()
                    + " of "
                    + m.get("experts").asInt()
                    + " experts per token, which is the dense MLP; k must be 1.."
                    + (m.get("experts").asInt() - 1)));
      }
      return;
    }
    if (p.has("recovery")) {
      String problem = recoveryProblem(p);
      if (problem != null) {
        out.add(new RecipeProblem(child(path, "recovery"), problem));
      }
    }
    if (p.has("depth")) {
      for (String other :
          new String[] {
            "method",
            "sparsity",
            "pattern",
            "experts",
            "structured",
            "format",
            "wbits",
            "group_size",
            "symmetric"
          }) {
        if (p.has(other)) {
          out.add(
              new RecipeProblem(
                  child(path, other),
                  "depth removes whole layers and takes no "
                      + other
                      + "; give depth.method (block_influence or angular)"));
        }
      }
      return;
    }
    boolean hasSparsity = p.has("sparsity");
    boolean hasPattern = p.has("pattern");
    boolean hasExperts = p.has("experts");
    if (p.has("structured")) {
      JsonNode st = p.get("structured");
      if (hasSparsity
          || hasPattern
          || hasExperts
          || p.has("method")
          || p.has("format")
          || p.has("wbits")) {
        out.add(
            new RecipeProblem(
                path,
                "structured removes whole heads and channels; give it alone (no method, sparsity,"
                    + " pattern, experts, format or wbits)"));
      } else if (Json.text(st, "widths", "uniform").equals("per_layer")
          && Json.number(st, "channels", 0) == 0) {
        out.add(
            new RecipeProblem(
                child(path, "structured.widths"),
                "per_layer spreads the removed MLP channels over the layers and needs channels > 0;"
                    + " not supported yet: per-layer head counts (heads stay uniform)"));
      } else if (Json.number(st, "heads", 0) == 0 && Json.number(st, "channels", 0) == 0) {
        out.add(
            new RecipeProblem(
                child(path, "structured"),
                "removes nothing; give heads (a fraction in (0, 1)) and/or channels"));
      }
      return;
    }
    int given = (hasSparsity ? 1 : 0) + (hasPattern ? 1 : 0) + (hasExperts ? 1 : 0);
    if (given == 0) {
      out.add(
          new RecipeProblem(
              child(path, "sparsity"),
              "missing; prune needs sparsity (a fraction), pattern (N:M, e.g. \"2:4\"),"
                  + " experts ({keep: n, method: frequency|weighted_norm|merge}), structured,"
                  + " depth ({drop: n, method: block_influence|angular}) or moefy ({experts: E,"
                  + " k: K})"));
    } else if (given > 1) {
      out.add(
          new RecipeProblem(
              path,
              hasExperts
                  ? "give one of sparsity, pattern and experts (experts removes whole experts,"
                      + " it takes no sparsity)"
                  : "give either sparsity or pattern, not both (an N:M pattern fixes the"
                      + " sparsity)"));
    } else if (hasExperts && (p.has("format") || p.has("wbits"))) {
      out.add(
          new RecipeProblem(
              path, "experts takes no format or wbits (they store and quantize pruned weights)"));
    } else if (!hasExperts && problemWithOutput(p) != null) {
      out.add(new RecipeProblem(child(path, problemWithOutput(p)[0]), problemWithOutput(p)[1]));
    } else if (hasExperts && p.has("method")) {
      out.add(
          new RecipeProblem(
              child(path, "method"),
              "scores weights, not experts; with experts give experts.method (frequency,"
                  + " weighted_norm or merge)"));
    }
  }

  /** What is wrong with {@code p}'s recovery block given the pruning it follows, or null. */
  private static String recoveryProblem(JsonNode p) {
    JsonNode r = p.get("recovery");
    int steps = r.get("steps").asInt();
    int rounds = Json.integer(r, "rounds", 1);
    if (p.has("experts")) {
      return "not supported yet: recovery after expert pruning";
    }
    if (p.has("wbits") || !Json.text(p, "format", "dense").equals("dense")) {
      return "not supported yet: recovery with a sparse format or joint quantization; recover"
          + " dense, then add a quantize stage";
    }
    if (rounds > steps) {
      return "rounds (" + rounds + ") must not exceed steps (" + steps + ")";
    }
    if (rounds > 1 && (p.has("depth") || p.has("structured") || p.has("pattern"))) {
      return "rounds > 1 (iterative pruning) needs unstructured sparsity; give rounds: 1";
    }
    int batch = Json.integer(r, "batch", 4);
    if (Json.integer(r, "windows", 256) < batch) {
      return "windows must be at least batch (" + batch + ")";
    }
    return null;
  }

  /** {field, message} for format / wbits / group_size combinations not written, else null. */
  private static String[] problemWithOutput(JsonNode p) {
    String format = Json.text(p, "format", "dense");
    boolean wbits = p.has("wbits");
    if (!wbits && (p.has("group_size") || p.has("symmetric"))) {
      return new String[] {
        p.has("group_size") ? "group_size" : "symmetric", "needs wbits (joint quantization)"
      };
    }
    if (wbits && !Json.text(p, "method", "magnitude").equals("sparsegpt")) {
      return new String[] {
        "wbits",
        "joint quantization is SparseGPT's (method: sparsegpt); for other methods add a"
            + " quantize stage"
      };
    }
    if (wbits && !format.equals("dense")) {
      return new String[] {
        "format",
        format
            + " with wbits is not written (vLLM serves 2:4 + int4 only as marlin-24); use format"
            + " dense: pack-quantized codes with a 2:4 sparsity_config"
      };
    }
    if (format.equals("sparse-24-bitmask") && !"2:4".equals(Json.text(p, "pattern", null))) {
      return new String[] {"format", "sparse-24-bitmask stores pattern \"2:4\" only"};
    }
    return null;
  }

  private static String child(String path, String name) {
    return path.isEmpty() ? name : path + "." + name;
  }

  static PruneParams from(JsonNode p) {
    PruneParams pruning = pruningFrom(p);
    JsonNode r = p.get("recovery");
    return r == null ? pruning : pruning.withRecovery(Recovery.from(r));
  }

  private static PruneParams pruningFrom(JsonNode p) {
    JsonNode moefy = p.get("moefy");
    if (moefy != null) {
      return moefy(Moefy.from(moefy));
    }
    JsonNode depth = p.get("depth");
    if (depth != null) {
      return depth(
          depth.get("drop").asInt(),
          DepthMethod.parse(Json.text(depth, "method", DepthMethod.BLOCK_INFLUENCE.key())));
    }
    JsonNode st = p.get("structured");
    if (st != null) {
      return structured(
          new StructuredSpec(
              Json.number(st, "heads", 0),
              Json.number(st, "channels", 0),
              StructuredSpec.Importance.parse(Json.text(st, "importance", "activation")),
              StructuredSpec.HeadMode.parse(Json.text(st, "head_mode", "kv_groups")),
              Json.bool(st, "compensate", false),
              StructuredSpec.Widths.parse(Json.text(st, "widths", "uniform"))));
    }
    JsonNode experts = p.get("experts");
    if (experts != null) {
      return experts(
          experts.get("keep").asInt(),
          ExpertMethod.valueOf(experts.get("method").asText().toUpperCase(Locale.ROOT)));
    }
    Method method = Method.valueOf(Json.text(p, "method", "magnitude").toUpperCase(Locale.ROOT));
    PruningOutput output =
        new PruningOutput(
            PruningOutput.Format.parse(Json.text(p, "format", "dense")),
            p.has("wbits") ? p.get("wbits").asInt() : 0,
            p.has("group_size") ? p.get("group_size").asInt() : 0,
            !p.has("symmetric") || p.get("symmetric").asBoolean());
    String pattern = Json.text(p, "pattern", null);
    if (pattern != null) {
      NmPattern nm = NmPattern.parse(pattern);
      return new PruneParams(method, nm.sparsity(), nm, null, output);
    }
    return new PruneParams(method, Json.number(p, "sparsity", Double.NaN), null, null, output);
  }

  /** Whether this stage reads calibration activations. */
  public boolean needsCalibration() {
    return experts != null
        || moefy != null
        || structured != null
        || depth != null
        || recovery != null
        || method != Method.MAGNITUDE;
  }

  @Override
  public StageKind kind() {
    return StageKind.PRUNE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = pruningJson();
    if (recovery != null) {
      o.set("recovery", recovery.toJson());
    }
    return o;
  }

  private ObjectNode pruningJson() {
    if (moefy != null) {
      ObjectNode o = Json.object();
      o.set("moefy", moefy.toJson());
      return o;
    }
    if (depth != null) {
      ObjectNode o = Json.object();
      o.set("depth", depth.toJson());
      return o;
    }
    if (structured != null) {
      ObjectNode o = Json.object();
      o.putObject("structured")
          .put("heads", structured.heads())
          .put("channels", structured.channels())
          .put("importance", structured.importance().key())
          .put("head_mode", structured.headMode().key())
          .put("compensate", structured.compensate())
          .put("widths", structured.widths().key());
      return o;
    }
    if (experts != null) {
      ObjectNode o = Json.object();
      o.set("experts", experts.toJson());
      return o;
    }
    ObjectNode o = Json.object().put("method", method.key());
    if (pattern == null) {
      o.put("sparsity", sparsity);
    } else {
      o.put("pattern", pattern.toString());
    }
    if (output.format() != PruningOutput.Format.DENSE) {
      o.put("format", output.format().value());
    }
    if (output.wbits() != 0) {
      o.put("wbits", output.wbits());
      o.put("group_size", output.groupSize());
      o.put("symmetric", output.symmetric());
    }
    return o;
  }
}
