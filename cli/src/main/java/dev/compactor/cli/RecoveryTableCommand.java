package dev.compactor.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.cli.distill.DistillCommand;
import dev.compactor.cli.factorize.FactorizeCommand;
import dev.compactor.cli.lora.LoraCommand;
import dev.compactor.cli.prune.PruneCommand;
import dev.compactor.cli.quant.QatCommand;
import dev.compactor.cli.quant.QuantizeCommand;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.metrics.DivergenceEvaluator;
import dev.compactor.core.metrics.DivergenceResult;
import dev.compactor.core.metrics.EvalText;
import dev.compactor.core.metrics.ProgressListener;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.tasks.BuiltinTasks;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tasks.TaskResult;
import dev.compactor.core.tasks.TaskScorer;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code compactor recovery-table}: issue 11's recovery comparisons in one table, each made by the
 * command that owns it ({@code qat --compare}, {@code quantize --method codebook}, {@code prune},
 * {@code lora --merge}, {@code factorize}, {@code distill}, with their documented defaults) and
 * every output scored the same way: KL(original ‖ output) per token and perplexity on the first
 * {@code --max-bytes} of the Europarl English test split, windows of 256 (QAT's rows are scored by
 * {@code qat} itself on the same text and windows). The task rows distil the same student twice, on
 * Europarl windows and on the {@code europarl-phrase} task built from the training split, and score
 * both with {@link TaskScorer} on the task built from the test split. Under the table, each
 * comparison's expected ordering and whether this run reproduced it.
 */
public final class RecoveryTableCommand implements Command {

  /** The comparisons, in the order they are printed ({@code --only} takes a subset). */
  static final List<String> SECTIONS =
      List.of("quant", "codebook", "prune", "factorize", "distill", "task");

  static final long SEED = 1234;

  /** The held-out task of the task-distillation rows (see {@link BuiltinTasks}). */
  static final String TASK = BuiltinTasks.PHRASE;

  static final int EVAL_SEQ = 256;
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The budgets: {@link #FULL} are the documented defaults of the parts (cli/docs), {@link #QUICK}
   * a smoke run of a few minutes whose figures show that every path runs, not how well.
   */
  record Settings(
      int maxBytes,
      int qatSteps,
      int loraSteps,
      int loraSamples,
      int loraHeldOut,
      int calSamples,
      int distillSteps,
      int distillSamples,
      int evalWindows,
      int taskTrain,
      int taskTest) {}

  static final Settings FULL = new Settings(20_000, 60, 150, 256, 32, 64, 200, 256, 32, 1024, 200);
  static final Settings QUICK = new Settings(3_000, 2, 3, 16, 2, 8, 4, 16, 2, 32, 24);

  /** One row of the table. */
  record Row(
      String comparison,
      String method,
      String setting,
      double kl,
      double ppl,
      String size,
      String note) {}

  /** One expected ordering and whether the measured figures follow it. */
  record Check(String comparison, String expected, String measured, boolean holds) {}

  @Override
  public String name() {
    return "recovery-table";
  }

  @Override
  public String summary() {
    return "issue 11's recovery comparisons in one table (RTN/GPTQ/QAT, pruning ± LoRA, SVD vs"
        + " SVD-LLM, codebook vs uniform, hidden+logit vs logit KD, task vs general student)";
  }

  @Override
  public String usage() {
    return "[--model DIR] [--quick] [--only quant,codebook,prune,factorize,distill,task]"
        + " [--max-bytes N] [--work DIR] [--json]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args a =
        Args.parse(argv, Set.of("model", "only", "max-bytes", "work"), Set.of("quick", "json"));
    Path model = Path.of(a.string("model", "models/deep-llama-v1"));
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    Settings s = a.has("quick") ? QUICK : FULL;
    int maxBytes = a.integer("max-bytes", s.maxBytes());
    if (maxBytes < 1000) {
      throw new UsageException("--max-bytes must be at least 1000, found " + maxBytes);
    }
    Set<String> only = new LinkedHashSet<>(SECTIONS);
    if (a.present("only")) {
      only.clear();
      for (String x : a.required("only").split(",")) {
        if (!SECTIONS.contains(x.strip())) {
          throw new UsageException("--only: unknown section '" + x + "'; expected " + SECTIONS);
        }
        only.add(x.strip());
      }
    }
    boolean keepWork = a.present("work");
    Path work =
        keepWork ? Path.of(a.required("work")) : Files.createTempDirectory("recovery-table");
    Files.createDirectories(work);
    long start = System.nanoTime();
    Table t = new Table(model, s, maxBytes, work, err);
    try (t) {
      for (String section : SECTIONS) {
        if (only.contains(section)) {
          err.println("== " + section);
          switch (section) {
            case "quant" -> t.quant();
            case "codebook" -> t.codebook();
            case "prune" -> t.prune();
            case "factorize" -> t.factorize();
            case "distill" -> t.distill();
            case "task" -> t.task();
            default -> throw new IllegalStateException(section);
          }
        }
      }
    } finally {
      if (!keepWork) {
        TableText.deleteRecursively(work);
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    if (a.has("json")) {
      out.println(t.json(seconds));
    } else {
      t.print(out, seconds);
    }
    return 0;
  }

  /** The runs of one table: the model, the held-out tokens and what has been measured. */
  static final class Table implements AutoCloseable {
    final Path model;
    final Settings s;
    final int maxBytes;
    final Path work;
    final PrintStream err;
    final CausalLM base;
    final int[] tokens;
    final int seq;
    final int layers;
    final List<Row> rows = new ArrayList<>();
    final List<Check> checks = new ArrayList<>();

    /** KL of RTN at 4, 3 and 2 bits from the quant section, for the codebook comparison. */
    final double[] rtnKl = {Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN};

    final String[] rtnName = new String[5];
    Path generalStudent;

    Table(Path model, Settings s, int maxBytes, Path work, PrintStream err) throws IOException {
      this.model = model;
      this.s = s;
      this.maxBytes = maxBytes;
      this.work = work;
      this.err = err;
      ModelConfig config = ModelConfig.read(model);
      this.layers = config.numLayers();
      this.base = ModelLoading.resident(model);
      this.seq = Math.min(EVAL_SEQ, base.maxSequenceLength());
      try (TextTokenizer tok = Tokenizers.forModel(model)) {
        String text =
            TableText.truncate(
                dev.compactor.core.data.Corpus.europarlEnglish().testText(), maxBytes);
        this.tokens = EvalText.of(tok, text).tokens();
      }
      DivergenceResult dense =
          new DivergenceEvaluator(seq, seq).evaluate(base, base, tokens, ProgressListener.NONE);
      rows.add(
          new Row(
              "reference",
              "original",
              "",
              0,
              dense.baselinePerplexity(),
              params(model),
              tokens.length + " held-out tokens"));
    }

    // ---- quantization: RTN vs GPTQ vs QAT at 4, 3, 2 bits

    void quant() throws Exception {
      for (int bits : new int[] {4, 3, 2}) {
        int group = bits == 4 ? 64 : 32;
        String lr = bits == 2 ? "2e-4" : "1e-4";
        Path out = work.resolve("qat-" + bits);
        JsonNode j =
            call(
                new QatCommand(),
                "--model",
                model.toString(),
                "--bits",
                Integer.toString(bits),
                "--group-size",
                Integer.toString(group),
                "--init",
                "best",
                "--compare",
                "--steps",
                Integer.toString(s.qatSteps()),
                "--lr",
                lr,
                "--max-bytes",
                Integer.toString(maxBytes),
                "--out",
                out.toString());
        double rtn = Double.NaN;
        double gptq = Double.NaN;
        double qat = Double.NaN;
        for (JsonNode r : j.get("rows")) {
          String method = r.get("method").asText();
          double kl = r.get("klDivergence").asDouble();
          String note = "";
          if (method.startsWith("rtn")) {
            rtn = kl;
            rtnKl[bits] = kl;
            rtnName[bits] = method;
          } else if (method.startsWith("gptq")) {
            gptq = kl;
          } else if (method.startsWith("qat")) {
            qat = kl;
            note = s.qatSteps() + " steps, lr " + lr;
          }
          rows.add(
              new Row(
                  "quant " + bits + "-bit",
                  method,
                  "symmetric g" + group,
                  kl,
                  r.get("perplexity").asDouble(),
                  String.format(Locale.ROOT, "%.2f bpw", bits + 16.0 / group),
                  note));
        }
        String expected =
            bits == 4
                ? "GPTQ < RTN; QAT about GPTQ"
                : "QAT << RTN (and QAT <= GPTQ) at " + bits + " bits";
        boolean holds = bits == 4 ? gptq < rtn : qat < rtn && qat <= gptq;
        checks.add(
            new Check(
                "quant " + bits + "-bit",
                expected,
                String.format(Locale.ROOT, "KL RTN %.6f, GPTQ %.6f, QAT %.6f", rtn, gptq, qat),
                holds));
        TableText.deleteRecursively(out);
      }
    }

    // ---- codebook vs uniform at equal index bits

    void codebook() throws Exception {
      for (int bits : new int[] {4, 3}) {
        Path out = work.resolve("codebook-" + bits);
        JsonNode j =
            call(
                new QuantizeCommand(),
                "--model",
                model.toString(),
                "--method",
                "codebook",
                "--bits",
                Integer.toString(bits),
                "--samples",
                Integer.toString(s.calSamples()),
                "--out",
                out.toString());
        DivergenceResult d = score(out.resolve("codebook"));
        double bpw = j.path("bits_per_weight").asDouble(Double.NaN);
        rows.add(
            new Row(
                "codebook vs uniform " + bits + "-bit",
                "codebook " + bits + "-bit",
                "per-row 2^" + bits + " F16 centroids, fisher sensitivity",
                d.klDivergence(),
                d.modelPerplexity(),
                String.format(Locale.ROOT, "%.2f bpw", bpw),
                ""));
        String measured =
            Double.isNaN(rtnKl[bits])
                ? String.format(
                    Locale.ROOT,
                    "codebook KL %.6f; no uniform row (run the quant section)",
                    d.klDivergence())
                : String.format(
                    Locale.ROOT,
                    "codebook KL %.6f vs %s %.6f",
                    d.klDivergence(),
                    rtnName[bits],
                    rtnKl[bits]);
        checks.add(
            new Check(
                "codebook vs uniform " + bits + "-bit",
                "codebook < RTN at equal index bits",
                measured,
                d.klDivergence() < rtnKl[bits]));
        TableText.deleteRecursively(out);
      }
    }

    // ---- pruning, without and with LoRA recovery

    void prune() throws Exception {
      pruneAndRecover(
          "Wanda 50 %",
          "unstructured, per output row",
          List.of("--method", "wanda", "--sparsity", "0.5"),
          "wanda");
      pruneAndRecover(
          "structured 25 %",
          "25 % of MLP channels (activation importance)",
          List.of("--channels", "0.25"),
          "channels");
    }

    private void pruneAndRecover(String what, String setting, List<String> how, String dirName)
        throws Exception {
      Path pruned = work.resolve(dirName);
      List<String> argv = new ArrayList<>(List.of("--model", model.toString()));
      argv.addAll(how);
      argv.addAll(
          List.of("--samples", Integer.toString(s.calSamples()), "--out", pruned.toString()));
      call(new PruneCommand(), argv.toArray(String[]::new));
      DivergenceResult before = score(pruned);
      rows.add(
          new Row(
              "pruning " + what,
              what,
              setting,
              before.klDivergence(),
              before.modelPerplexity(),
              params(pruned),
              "no recovery"));
      Path lora = work.resolve(dirName + "-lora");
      call(
          new LoraCommand(),
          "--model",
          pruned.toString(),
          "--teacher",
          model.toString(),
          "--steps",
          Integer.toString(s.loraSteps()),
          "--samples",
          Integer.toString(s.loraSamples()),
          "--held-out",
          Integer.toString(s.loraHeldOut()),
          "--merge",
          "--out",
          lora.toString());
      DivergenceResult after = score(lora.resolve("merged"));
      rows.add(
          new Row(
              "pruning " + what,
              what + " + LoRA r8",
              setting + "; LoRA merged (zeros kept)",
              after.klDivergence(),
              after.modelPerplexity(),
              params(lora.resolve("merged")),
              s.loraSteps() + " steps, lr 1e-3, KL to the original"));
      double closed = 1 - after.klDivergence() / before.klDivergence();
      checks.add(
          new Check(
              "pruning " + what,
              "LoRA recovery closes part of the gap (KL after < before)",
              String.format(
                  Locale.ROOT,
                  "KL %.6f -> %.6f (%.0f %% of the gap closed)",
                  before.klDivergence(),
                  after.klDivergence(),
                  100 * closed),
              after.klDivergence() < before.klDivergence()));
      TableText.deleteRecursively(pruned);
      TableText.deleteRecursively(lora);
    }

    // ---- SVD vs activation-aware SVD at equal parameters

    void factorize() throws Exception {
      double[] kl = new double[2];
      String[] methods = {"svd", "svd_llm"};
      for (int i = 0; i < 2; i++) {
        Path out = work.resolve("factorize-" + methods[i]);
        JsonNode j =
            call(
                new FactorizeCommand(),
                "--model",
                model.toString(),
                "--ratio",
                "0.5",
                "--method",
                methods[i],
                "--samples",
                Integer.toString(s.calSamples()),
                "--no-eval",
                "--out",
                out.toString());
        DivergenceResult d = score(out);
        kl[i] = d.klDivergence();
        rows.add(
            new Row(
                "SVD vs SVD-LLM",
                methods[i],
                "ratio 0.5, every decoder linear",
                d.klDivergence(),
                d.modelPerplexity(),
                String.format(Locale.ROOT, "%,d params", j.path("parameters_after").asLong()),
                i == 1 ? s.calSamples() + " calibration windows" : ""));
        TableText.deleteRecursively(out);
      }
      checks.add(
          new Check(
              "SVD vs SVD-LLM",
              "svd_llm << svd at equal rank",
              String.format(Locale.ROOT, "KL svd %.6f, svd_llm %.6f", kl[0], kl[1]),
              kl[1] < kl[0]));
    }

    // ---- hidden-state + logit KD vs logit KD alone

    void distill() throws Exception {
      Path logit = distillGeneral();
      DivergenceResult l = score(logit);
      rows.add(distillRow("logit KD", l, logit, ""));
      Path hidden = work.resolve("distill-hidden");
      call(
          new DistillCommand(),
          distillArgs(hidden, "--hidden-loss", "mse", "--hidden-weight", "1")
              .toArray(String[]::new));
      DivergenceResult h = score(hidden);
      rows.add(distillRow("hidden MSE + logit KD", h, hidden, "β = 1"));
      checks.add(
          new Check(
              "KD loss",
              "hidden-state + logit KD < logit KD alone",
              String.format(
                  Locale.ROOT,
                  "KL logit %.6f, hidden+logit %.6f",
                  l.klDivergence(),
                  h.klDivergence()),
              h.klDivergence() < l.klDivergence()));
      TableText.deleteRecursively(hidden);
    }

    private Row distillRow(String method, DivergenceResult d, Path dir, String note)
        throws IOException {
      return new Row(
          "KD loss",
          method,
          studentLayers() + " of " + layers + " layers, " + s.distillSteps() + " steps, lr 1e-3",
          d.klDivergence(),
          d.modelPerplexity(),
          params(dir),
          note);
    }

    private int studentLayers() {
      return Math.max(1, layers / 2);
    }

    /** The logit-KD student on Europarl windows, made once for the KD and the task rows. */
    private Path distillGeneral() throws Exception {
      if (generalStudent == null) {
        generalStudent = work.resolve("distill-logit");
        call(new DistillCommand(), distillArgs(generalStudent).toArray(String[]::new));
      }
      return generalStudent;
    }

    private List<String> distillArgs(Path out, String... extra) {
      List<String> argv =
          new ArrayList<>(
              List.of(
                  "--teacher", model.toString(),
                  "--keep-layers", Integer.toString(studentLayers()),
                  "--steps", Integer.toString(s.distillSteps()),
                  "--lr", "1e-3",
                  "--batch", "4",
                  "--eval-windows", Integer.toString(s.evalWindows()),
                  "--out", out.toString()));
      if (!Arrays.asList(extra).contains("--data")) {
        // the documented general-KD windows (cli/docs/distill.md)
        argv.addAll(List.of("--samples", Integer.toString(s.distillSamples()), "--seq-len", "64"));
      }
      argv.addAll(Arrays.asList(extra));
      return argv;
    }

    // ---- task-distilled vs general student on a held-out task

    void task() throws Exception {
      List<TaskDoc> test = BuiltinTasks.build(TASK, s.taskTest(), SEED);
      Set<String> seen = new HashSet<>();
      test.forEach(d -> seen.add(d.context()));
      Path train = work.resolve("task-train.jsonl");
      int written = 0;
      StringBuilder jsonl = new StringBuilder();
      for (TaskDoc d : BuiltinTasks.buildFromTraining(TASK, s.taskTrain(), SEED)) {
        // a sentence said in two speeches must not be trained on and scored
        if (seen.add(d.context())) {
          ObjectNode o = JSON.createObjectNode();
          o.put("prompt", d.context());
          o.put("completion", ((TaskDoc.Continuation) d).continuation());
          jsonl.append(o).append('\n');
          written++;
        }
      }
      Files.writeString(train, jsonl, StandardCharsets.UTF_8);
      err.printf("task data: %d training examples, %d test documents%n", written, test.size());
      Path general = distillGeneral();
      Path taskStudent = work.resolve("distill-task");
      List<String> argv = distillArgs(taskStudent, "--data", train.toString());
      call(new DistillCommand(), argv.toArray(String[]::new));
      TaskResult teacher = scoreTask(base, test);
      TaskResult g;
      TaskResult k;
      try (CausalLM m = ModelLoading.resident(general)) {
        g = scoreTask(m, test);
      }
      try (CausalLM m = ModelLoading.resident(taskStudent)) {
        k = scoreTask(m, test);
      }
      DivergenceResult gd = score(general);
      DivergenceResult kd = score(taskStudent);
      String setting =
          studentLayers() + " of " + layers + " layers, " + s.distillSteps() + " steps, lr 1e-3";
      rows.add(
          new Row(
              "task vs general student",
              "teacher",
              "",
              0,
              rows.get(0).ppl(),
              params(model),
              taskNote(teacher)));
      rows.add(
          new Row(
              "task vs general student",
              "general KD (Europarl windows)",
              setting,
              gd.klDivergence(),
              gd.modelPerplexity(),
              params(general),
              taskNote(g)));
      rows.add(
          new Row(
              "task vs general student",
              "task KD (" + written + " " + TASK + " examples, train split)",
              setting + ", loss on the completion",
              kd.klDivergence(),
              kd.modelPerplexity(),
              params(taskStudent),
              taskNote(k)));
      checks.add(
          new Check(
              "task vs general student",
              "task KD beats general KD on its task (acc, or the word's ppl)",
              String.format(
                  Locale.ROOT,
                  "%s acc %.3f vs %.3f, word ppl %.2f vs %.2f (teacher %.3f, %.2f)",
                  TASK,
                  k.acc(),
                  g.acc(),
                  k.perplexity(),
                  g.perplexity(),
                  teacher.acc(),
                  teacher.perplexity()),
              k.acc() > g.acc() || (k.acc() == g.acc() && k.perplexity() < g.perplexity())));
    }

    private TaskResult scoreTask(CausalLM m, List<TaskDoc> docs) throws IOException {
      try (TextTokenizer tok = Tokenizers.forModel(model)) {
        return new TaskScorer(m, tok).evaluate(TASK, docs, ProgressListener.NONE);
      }
    }

    private static String taskNote(TaskResult r) {
      return String.format(
          Locale.ROOT,
          "%s (%d test docs): acc %.3f ± %.3f, word ppl %.2f",
          r.task(),
          r.documents(),
          r.acc(),
          r.accStderr(),
          r.perplexity());
    }

    // ---- plumbing

    /** Runs a command with {@code --json} and returns the JSON it printed last. */
    JsonNode call(Command c, String... argv) throws Exception {
      String[] withJson = Arrays.copyOf(argv, argv.length + 1);
      withJson[argv.length] = "--json";
      err.println("$ compactor " + c.name() + " " + String.join(" ", argv));
      Path reuse = madeBy(c, withJson);
      if (reuse != null) {
        err.println("reusing " + reuse + ": made by this same command line (--work)");
        return JSON.createObjectNode();
      }
      ByteArrayOutputStream buf = new ByteArrayOutputStream();
      int rc;
      try (PrintStream p = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
        rc = c.run(withJson, p, err);
      }
      if (rc != 0) {
        throw new IllegalStateException("compactor " + c.name() + " exited with " + rc);
      }
      String[] lines = buf.toString(StandardCharsets.UTF_8).strip().split("\n");
      for (int i = lines.length - 1; i >= 0; i--) {
        if (lines[i].startsWith("{")) {
          return JSON.readTree(lines[i]);
        }
      }
      return JSON.createObjectNode();
    }

    /**
     * The {@code --out} of {@code argv} when an earlier run with the same {@code --work} left it
     * complete there, made by the same command line (its compactor.json says so): distillation runs
     * are minutes long, and a table interrupted late need not redo them.
     */
    private static Path madeBy(Command c, String[] argv) throws IOException {
      List<String> a = Arrays.asList(argv);
      int i = a.indexOf("--out");
      if (!c.name().equals("distill") || i < 0 || i + 1 >= a.size()) {
        return null;
      }
      Path out = Path.of(a.get(i + 1));
      Path provenance = out.resolve("compactor.json");
      if (!Files.isRegularFile(provenance) || !Files.isRegularFile(out.resolve("config.json"))) {
        return null;
      }
      List<String> was = new ArrayList<>();
      JSON.readTree(provenance.toFile()).path("command_line").forEach(n -> was.add(n.asText()));
      List<String> now = new ArrayList<>(List.of(c.name()));
      now.addAll(a);
      return was.equals(now) ? out : null;
    }

    DivergenceResult score(Path dir) throws IOException {
      try (CausalLM m = ModelLoading.resident(dir)) {
        return new DivergenceEvaluator(seq, seq).evaluate(base, m, tokens, ProgressListener.NONE);
      }
    }

    static String params(Path dir) throws IOException {
      return String.format(Locale.ROOT, "%,d params", ModelDirectory.open(dir).parameterCount());
    }

    void print(PrintStream out, double seconds) {
      out.println("model: " + model + " (" + TableText.weightsHash(model) + ")");
      out.printf(
          Locale.ROOT,
          "held out: Europarl English test split, first %d bytes (%d tokens), windows of %d;"
              + " KL(original ‖ row) per token%n%n",
          maxBytes,
          tokens.length,
          seq);
      out.println("| comparison | method | setting | held-out KL | ppl | params / bits | note |");
      out.println("|---|---|---|---|---|---|---|");
      for (Row r : rows) {
        out.printf(
            Locale.ROOT,
            "| %s | %s | %s | %.6f | %.4f | %s | %s |%n",
            r.comparison(),
            r.method(),
            r.setting(),
            r.kl(),
            r.ppl(),
            r.size(),
            r.note());
      }
      out.println();
      out.println("| comparison | expected | measured | reproduced |");
      out.println("|---|---|---|---|");
      for (Check c : checks) {
        out.printf(
            "| %s | %s | %s | %s |%n",
            c.comparison(), c.expected(), c.measured(), c.holds() ? "yes" : "**no**");
      }
      out.printf(Locale.ROOT, "%n%.0f s%n", seconds);
    }

    String json(double seconds) {
      ObjectNode root =
          TableText.jsonHeader(model, "Europarl English test split", tokens.length, seq);
      root.put("maxBytes", maxBytes);
      root.put("seconds", seconds);
      ArrayNode r = root.putArray("rows");
      for (Row x : rows) {
        r.addObject()
            .put("comparison", x.comparison())
            .put("method", x.method())
            .put("setting", x.setting())
            .put("klDivergence", x.kl())
            .put("perplexity", x.ppl())
            .put("size", x.size())
            .put("note", x.note());
      }
      ArrayNode c = root.putArray("checks");
      for (Check x : checks) {
        c.addObject()
            .put("comparison", x.comparison())
            .put("expected", x.expected())
            .put("measured", x.measured())
            .put("holds", x.holds());
      }
      return root.toString();
    }

    @Override
    public void close() {
      base.close();
    }
  }
}
