package dev.compactor.core.recipe;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * What to measure on the candidate model, always relative to the job's baseline (ingested) model.
 *
 * @param perplexity sliding-window perplexity settings, or null when perplexity is off
 * @param kl KL divergence and top-1 agreement of the candidate's next-token distribution vs the
 *     baseline's
 * @param latency per-token forward latency and the size ratio
 * @param tasks task accuracy of candidate and baseline, or null for none
 * @param speed the batch sizes and context lengths latency is measured at; null exactly when
 *     latency is off ({@code latency: true} is {@link Speed#DEFAULT})
 * @param energy energy per token of candidate and baseline, from the latency runs
 * @param cascade the routing curve of candidate (small) and baseline (large) as a cascade, or null
 *     for none
 * @param nativeSpeed prefill and decode speed of the artifact's GGUF files run natively, against
 *     the original written as an F32 GGUF, or null for none ({@code native_speed})
 */
public record EvaluateParams(
    Perplexity perplexity,
    boolean kl,
    boolean latency,
    Tasks tasks,
    Speed speed,
    boolean energy,
    Cascade cascade,
    NativeSpeed nativeSpeed)
    implements StageParams {

  public EvaluateParams {
    if (latency && speed == null) {
      speed = Speed.DEFAULT;
    }
    if (!latency) {
      speed = null;
    }
    if (energy && !latency) {
      throw new IllegalArgumentException(
          "energy is measured on the latency runs: turn latency on to measure energy");
    }
  }

  /** Without native speed. */
  public EvaluateParams(
      Perplexity perplexity,
      boolean kl,
      boolean latency,
      Tasks tasks,
      Speed speed,
      boolean energy,
      Cascade cascade) {
    this(perplexity, kl, latency, tasks, speed, energy, cascade, null);
  }

  /**
   * Native speed ({@code native_speed: true | {prompt_tokens, decode_tokens, repeats, threads}}):
   * each llama GGUF file of the evaluated artifact and the original model (written as an F32 GGUF
   * by the project's exporter into the step's scratch directory) run by the JVM's native GGUF
   * decoder, a prompt of {@code promptTokens} through the batched prefill, then {@code
   * decodeTokens} decode steps, medians of {@code repeats} runs.
   *
   * @param threads inference threads, or null for {@code COMPACTOR_INFER_THREADS} (default: the
   *     CPUs of the evaluating process)
   */
  public record NativeSpeed(int promptTokens, int decodeTokens, int repeats, Integer threads) {

    /** {@code native_speed: true}: a 32-token prompt, 32 tokens decoded, median of 3. */
    public static final NativeSpeed DEFAULT = new NativeSpeed(32, 32, 3, null);

    public NativeSpeed {
      if (promptTokens < 1 || decodeTokens < 1 || repeats < 1 || (threads != null && threads < 1)) {
        throw new IllegalArgumentException(
            "native_speed: expected prompt_tokens, decode_tokens, repeats and threads >= 1");
      }
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("native_speed")
            .optional("prompt_tokens", ParamSchema.integerAtLeast(1))
            .optional("decode_tokens", ParamSchema.integerAtLeast(1))
            .optional("repeats", ParamSchema.integerAtLeast(1))
            .optional("threads", ParamSchema.integerAtLeast(1));

    static NativeSpeed from(JsonNode n) {
      if (n == null || n.isNull() || (n.isBoolean() && !n.asBoolean())) {
        return null;
      }
      if (n.isBoolean()) {
        return DEFAULT;
      }
      return new NativeSpeed(
          Json.integer(n, "prompt_tokens", DEFAULT.promptTokens),
          Json.integer(n, "decode_tokens", DEFAULT.decodeTokens),
          Json.integer(n, "repeats", DEFAULT.repeats),
          n.has("threads") ? n.get("threads").asInt() : null);
    }

    ObjectNode toJson() {
      ObjectNode o =
          Json.object()
              .put("prompt_tokens", promptTokens)
              .put("decode_tokens", decodeTokens)
              .put("repeats", repeats);
      if (threads != null) {
        o.put("threads", threads);
      }
      return o;
    }
  }

  /** Without task accuracy. */
  public EvaluateParams(Perplexity perplexity, boolean kl, boolean latency) {
    this(perplexity, kl, latency, null);
  }

  /** With a cascade; latency at the default batch and context, no energy. */
  public EvaluateParams(
      Perplexity perplexity, boolean kl, boolean latency, Tasks tasks, Cascade cascade) {
    this(perplexity, kl, latency, tasks, null, false, cascade);
  }

  /** Without a cascade. */
  public EvaluateParams(
      Perplexity perplexity,
      boolean kl,
      boolean latency,
      Tasks tasks,
      Speed speed,
      boolean energy) {
    this(perplexity, kl, latency, tasks, speed, energy, null);
  }

  /**
   * A cascade ({@code cascade: {signal, granularity, target}}): the candidate answers, the baseline
   * when the candidate's confidence is low; core's {@code cascade} package computes the curve on
   * the evaluation text and picks the cheapest threshold meeting the target.
   *
   * @param signal {@code maxprob}, {@code margin} or {@code entropy}
   * @param granularity {@code request} (text windows) or {@code token}
   * @param target quality (NLL) relative to the baseline to meet, e.g. 0.99
   */
  public record Cascade(String signal, String granularity, double target) {

    static final List<String> SIGNALS = List.of("maxprob", "margin", "entropy");
    static final List<String> GRANULARITIES = List.of("request", "token");

    public Cascade {
      if (!SIGNALS.contains(signal)) {
        throw new IllegalArgumentException(
            "cascade.signal must be one of " + SIGNALS + ", found " + signal);
      }
      if (!GRANULARITIES.contains(granularity)) {
        throw new IllegalArgumentException(
            "cascade.granularity must be one of " + GRANULARITIES + ", found " + granularity);
      }
      if (!(target > 0 && target <= 2)) {
        throw new IllegalArgumentException("cascade.target must be in (0, 2], found " + target);
      }
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("cascade")
            .optional("signal", ParamSchema.oneOf(SIGNALS.toArray(String[]::new)))
            .optional("granularity", ParamSchema.oneOf(GRANULARITIES.toArray(String[]::new)))
            .optional("target", ParamSchema.number(0, false, 2, true));

    static Cascade from(JsonNode c) {
      return new Cascade(
          Json.text(c, "signal", "maxprob"),
          Json.text(c, "granularity", "request"),
          Json.number(c, "target", 0.99));
    }

    ObjectNode toJson() {
      return Json.object()
          .put("signal", signal)
          .put("granularity", granularity)
          .put("target", target);
    }
  }

  /** Latency at the default batch and context, no energy, no cascade. */
  public EvaluateParams(Perplexity perplexity, boolean kl, boolean latency, Tasks tasks) {
    this(perplexity, kl, latency, tasks, null, false, null);
  }

  /**
   * Where latency is measured ({@code latency: {batch_sizes: [..], context_lengths: [..],
   * decode_tokens: n, repeats: n}}): prefill and decode at every pair of batch size and context
   * length, the median of {@code repeats} runs. The first pair gives the single figures ({@code
   * prefillMsPerToken}, {@code decodeTokensPerSecond}, energy per token).
   */
  public record Speed(
      List<Integer> batchSizes, List<Integer> contextLengths, int decodeTokens, int repeats) {

    /** {@code latency: true}: batch 1, a 32-token prompt, 32 tokens decoded, median of 3. */
    public static final Speed DEFAULT = new Speed(List.of(1), List.of(32), 32, 3);

    public Speed {
      batchSizes = List.copyOf(batchSizes);
      contextLengths = List.copyOf(contextLengths);
      if (batchSizes.isEmpty() || contextLengths.isEmpty() || decodeTokens < 1 || repeats < 1) {
        throw new IllegalArgumentException(
            "latency: expected batch sizes, context lengths, decode_tokens >= 1 and repeats >= 1");
      }
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("latency")
            .optional("batch_sizes", ParamSchema.listOf(ParamSchema.integerAtLeast(1)))
            .optional("context_lengths", ParamSchema.listOf(ParamSchema.integerAtLeast(1)))
            .optional("decode_tokens", ParamSchema.integerAtLeast(1))
            .optional("repeats", ParamSchema.integerAtLeast(1));

    static Speed from(JsonNode l) {
      List<Integer> b = new ArrayList<>();
      l.path("batch_sizes").forEach(n -> b.add(n.asInt()));
      List<Integer> c = new ArrayList<>();
      l.path("context_lengths").forEach(n -> c.add(n.asInt()));
      return new Speed(
          b.isEmpty() ? DEFAULT.batchSizes : b,
          c.isEmpty() ? DEFAULT.contextLengths : c,
          Json.integer(l, "decode_tokens", DEFAULT.decodeTokens),
          Json.integer(l, "repeats", DEFAULT.repeats));
    }

    ObjectNode toJson() {
      ObjectNode o = Json.object();
      batchSizes.forEach(o.putArray("batch_sizes")::add);
      contextLengths.forEach(o.putArray("context_lengths")::add);
      return o.put("decode_tokens", decodeTokens).put("repeats", repeats);
    }
  }

  /**
   * Task accuracy ({@code tasks: {builtin: [...], files: [...], limit: n}}): lm-eval style scores
   * of the candidate and the baseline on built-in tasks and JSONL task files.
   *
   * @param builtin names of built-in tasks ({@code europarl-next-sentence}, {@code
   *     europarl-last-word})
   * @param files URIs of JSONL task files (task name: the file name without {@code .jsonl})
   * @param limit documents per task at most
   */
  public record Tasks(List<String> builtin, List<String> files, int limit) {

    /** Documents per task when the recipe gives no limit. */
    public static final int DEFAULT_LIMIT = 200;

    /** The built-in task names, as core's tasks package defines them. */
    static final List<String> BUILTIN = List.of("europarl-next-sentence", "europarl-last-word");

    public Tasks {
      builtin = List.copyOf(builtin);
      files = List.copyOf(files);
      if (builtin.isEmpty() && files.isEmpty()) {
        throw new IllegalArgumentException("tasks: give builtin task names and/or files");
      }
      if (limit < 1) {
        throw new IllegalArgumentException("tasks.limit must be at least 1, found " + limit);
      }
    }

    static final ParamSchema.ObjectType SCHEMA =
        ParamSchema.object("tasks")
            .optional(
                "builtin", ParamSchema.listOf(ParamSchema.oneOf(BUILTIN.toArray(String[]::new))))
            .optional("files", ParamSchema.listOf(ParamSchema.text()))
            .optional("limit", ParamSchema.integerAtLeast(1));

    static Tasks from(JsonNode t) {
      List<String> b = new ArrayList<>();
      t.path("builtin").forEach(n -> b.add(n.asText()));
      List<String> f = new ArrayList<>();
      t.path("files").forEach(n -> f.add(n.asText()));
      return new Tasks(b, f, Json.integer(t, "limit", DEFAULT_LIMIT));
    }

    ObjectNode toJson() {
      ObjectNode o = Json.object();
      builtin.forEach(o.putArray("builtin")::add);
      files.forEach(o.putArray("files")::add);
      return o.put("limit", limit);
    }
  }

  /** Default window when perplexity is on but no seq_len is given. */
  public static final int DEFAULT_SEQ_LEN = 512;

  /**
   * Sliding-window perplexity settings.
   *
   * @param seqLen tokens per window
   * @param stride tokens the window advances; equal to seqLen for disjoint windows
   */
  public record Perplexity(int seqLen, int stride) {}

  static final ParamSchema.ObjectType PERPLEXITY_SCHEMA =
      ParamSchema.object("perplexity")
          .optional("seq_len", ParamSchema.integerAtLeast(1))
          .optional("stride", ParamSchema.integerAtLeast(1));

  static final ParamSchema.ObjectType SCHEMA =
      ParamSchema.object("evaluate")
          .optional("perplexity", ParamSchema.either(ParamSchema.bool(), PERPLEXITY_SCHEMA))
          .optional("kl", ParamSchema.bool())
          .optional("latency", ParamSchema.either(ParamSchema.bool(), Speed.SCHEMA))
          .optional("energy", ParamSchema.bool())
          .optional("tasks", Tasks.SCHEMA)
          .optional("cascade", Cascade.SCHEMA)
          .optional("native_speed", ParamSchema.either(ParamSchema.bool(), NativeSpeed.SCHEMA));

  static void crossCheck(JsonNode p, String path, List<RecipeProblem> out) {
    JsonNode ppl = p == null ? null : p.get("perplexity");
    if (ppl != null && ppl.isObject() && ppl.has("seq_len") && ppl.has("stride")) {
      if (ppl.get("stride").asInt() > ppl.get("seq_len").asInt()) {
        out.add(
            new RecipeProblem(
                path + ".perplexity.stride",
                "stride "
                    + ppl.get("stride").asInt()
                    + " is larger than seq_len "
                    + ppl.get("seq_len").asInt()
                    + ", so tokens between windows would never be scored"));
      }
    }
    JsonNode t = p == null ? null : p.get("tasks");
    if (t != null && !t.has("builtin") && !t.has("files")) {
      out.add(
          new RecipeProblem(
              path + ".tasks", "names no task: give builtin (" + Tasks.BUILTIN + ") or files"));
      return;
    }
    JsonNode latency = p == null ? null : p.get("latency");
    boolean latencyOn = latency != null && (latency.isObject() || latency.asBoolean());
    if (p != null && p.path("energy").asBoolean(false) && !latencyOn) {
      out.add(
          new RecipeProblem(
              path + ".energy",
              "energy is measured on the latency runs: turn latency on (latency: true)"));
      return;
    }
    EvaluateParams e = from(p);
    if (e.perplexity == null
        && !e.kl
        && !e.latency
        && e.tasks == null
        && e.cascade == null
        && e.nativeSpeed == null) {
      out.add(new RecipeProblem(path, "measures nothing: perplexity, kl and latency are all off"));
    }
  }

  static EvaluateParams from(JsonNode p) {
    JsonNode ppl = p == null ? null : p.get("perplexity");
    Perplexity perplexity;
    if (ppl == null || ppl.isNull() || (ppl.isBoolean() && ppl.asBoolean())) {
      perplexity = new Perplexity(DEFAULT_SEQ_LEN, DEFAULT_SEQ_LEN);
    } else if (ppl.isBoolean()) {
      perplexity = null;
    } else {
      int seqLen = Json.integer(ppl, "seq_len", DEFAULT_SEQ_LEN);
      perplexity = new Perplexity(seqLen, Json.integer(ppl, "stride", seqLen));
    }
    JsonNode t = p == null ? null : p.get("tasks");
    JsonNode l = p == null ? null : p.get("latency");
    boolean latency = l != null && l.isObject() || Json.bool(p, "latency", false);
    JsonNode c = p == null ? null : p.get("cascade");
    return new EvaluateParams(
        perplexity,
        Json.bool(p, "kl", true),
        latency,
        t == null ? null : Tasks.from(t),
        l != null && l.isObject() ? Speed.from(l) : null,
        Json.bool(p, "energy", false),
        c == null ? null : Cascade.from(c),
        NativeSpeed.from(p == null ? null : p.get("native_speed")));
  }

  @Override
  public StageKind kind() {
    return StageKind.EVALUATE;
  }

  @Override
  public ObjectNode toJson() {
    ObjectNode o = Json.object();
    if (perplexity == null) {
      o.put("perplexity", false);
    } else {
      o.putObject("perplexity")
          .put("seq_len", perplexity.seqLen())
          .put("stride", perplexity.stride());
    }
    o.put("kl", kl);
    if (speed != null && !speed.equals(Speed.DEFAULT)) {
      o.set("latency", speed.toJson());
    } else {
      o.put("latency", latency);
    }
    if (energy) {
      o.put("energy", true);
    }
    if (tasks != null) {
      o.set("tasks", tasks.toJson());
    }
    if (cascade != null) {
      o.set("cascade", cascade.toJson());
    }
    if (nativeSpeed != null) {
      o.set("native_speed", nativeSpeed.toJson());
    }
    return o;
  }
}
