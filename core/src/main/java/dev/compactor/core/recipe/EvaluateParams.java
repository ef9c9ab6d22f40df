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
 * @param cascade the routing curve of candidate (small) and baseline (large) as a cascade, or null
 *     for none
 */
public record EvaluateParams(
    Perplexity perplexity, boolean kl, boolean latency, Tasks tasks, Cascade cascade)
    implements StageParams {

  /** Without task accuracy. */
  public EvaluateParams(Perplexity perplexity, boolean kl, boolean latency) {
    this(perplexity, kl, latency, null, null);
  }

  /** Without a cascade. */
  public EvaluateParams(Perplexity perplexity, boolean kl, boolean latency, Tasks tasks) {
    this(perplexity, kl, latency, tasks, null);
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
          .optional("latency", ParamSchema.bool())
          .optional("tasks", Tasks.SCHEMA)
          .optional("cascade", Cascade.SCHEMA);

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
    EvaluateParams e = from(p);
    if (e.perplexity == null && !e.kl && !e.latency && e.tasks == null && e.cascade == null) {
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
    JsonNode c = p == null ? null : p.get("cascade");
    return new EvaluateParams(
        perplexity,
        Json.bool(p, "kl", true),
        Json.bool(p, "latency", false),
        t == null ? null : Tasks.from(t),
        c == null ? null : Cascade.from(c));
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
    o.put("kl", kl).put("latency", latency);
    if (tasks != null) {
      o.set("tasks", tasks.toJson());
    }
    if (cascade != null) {
      o.set("cascade", cascade.toJson());
    }
    return o;
  }
}
