package dev.compactor.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.model.CausalLM;
import dev.compactor.core.tasks.BuiltinTasks;
import dev.compactor.core.tasks.TaskDoc;
import dev.compactor.core.tasks.TaskFile;
import dev.compactor.core.tasks.TaskResult;
import dev.compactor.core.tasks.TaskScorer;
import dev.compactor.core.tokenizer.TextTokenizer;
import dev.compactor.core.tokenizer.Tokenizers;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code compactor tasks}: lm-eval style task accuracy of a model on JSONL task files and the
 * built-in Europarl tasks ({@link BuiltinTasks}), with standard errors; {@code --write DIR} writes
 * the built-in tasks as JSONL instead, to inspect or to run elsewhere.
 */
final class TasksCommand implements Command {

  static final int DEFAULT_LIMIT = 200;

  @Override
  public String name() {
    return "tasks";
  }

  @Override
  public String summary() {
    return "task accuracy (lm-eval style multiple choice and continuations) with standard errors";
  }

  @Override
  public String usage() {
    return "--model DIR [--task FILE.jsonl,...] [--builtin "
        + String.join(",", BuiltinTasks.NAMES)
        + " (default: both unless --task)] [--limit N (200)] [--seed S] [--layer-by-layer] [--json]"
        + "\n       compactor tasks --write DIR [--builtin ...] [--limit N] [--seed S]";
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws Exception {
    Args args =
        Args.parse(
            argv,
            Set.of("model", "task", "builtin", "limit", "seed", "write"),
            Set.of("json", "layer-by-layer"));
    int limit = args.integer("limit", DEFAULT_LIMIT);
    if (limit < 1) {
      throw new UsageException("--limit must be at least 1, found " + limit);
    }
    long seed = args.integer("seed", 0);
    Map<String, List<TaskDoc>> tasks = new LinkedHashMap<>();
    List<String> builtins =
        args.present("builtin")
            ? List.of(args.required("builtin").split(","))
            : args.present("task") ? List.of() : BuiltinTasks.NAMES;
    for (String b : builtins) {
      if (!BuiltinTasks.NAMES.contains(b.strip())) {
        throw new UsageException(
            "--builtin: unknown task '" + b + "'; expected " + BuiltinTasks.NAMES);
      }
      tasks.put(b.strip(), BuiltinTasks.build(b.strip(), limit, seed));
    }
    if (args.present("write")) {
      Path dir = Path.of(args.required("write"));
      Files.createDirectories(dir);
      for (Map.Entry<String, List<TaskDoc>> t : tasks.entrySet()) {
        Path f = dir.resolve(t.getKey() + ".jsonl");
        Files.write(f, t.getValue().stream().map(TaskFile::line).toList());
        out.printf("wrote %s (%d documents)%n", f, t.getValue().size());
      }
      return 0;
    }
    if (args.present("task")) {
      for (String f : args.required("task").split(",")) {
        Path p = Path.of(f.strip());
        if (!Files.isRegularFile(p)) {
          throw new UsageException("--task: expected a JSONL file, found none at " + p);
        }
        List<TaskDoc> docs = TaskFile.read(p);
        String name = p.getFileName().toString().replaceFirst("\\.jsonl$", "");
        tasks.put(name, docs.subList(0, Math.min(limit, docs.size())));
      }
    }
    Path modelDir = args.requiredPath("model");
    List<TaskResult> results = new ArrayList<>();
    long t0 = System.nanoTime();
    try (TextTokenizer tokenizer = Tokenizers.forModel(modelDir);
        CausalLM model =
            args.has("layer-by-layer")
                ? ModelLoading.layerByLayer(modelDir)
                : ModelLoading.resident(modelDir)) {
      TaskScorer scorer = new TaskScorer(model, tokenizer);
      ProgressPrinter progress = new ProgressPrinter(err);
      for (Map.Entry<String, List<TaskDoc>> t : tasks.entrySet()) {
        results.add(scorer.evaluate(t.getKey(), t.getValue(), progress));
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (args.has("json")) {
      ObjectMapper json = new ObjectMapper();
      ObjectNode root = json.createObjectNode();
      root.put("model", modelDir.toString());
      ArrayNode a = root.putArray("tasks");
      for (TaskResult r : results) {
        ObjectNode o = a.addObject().put("task", r.task()).put("documents", r.documents());
        put(o, "acc", r.acc());
        put(o, "acc_stderr", r.accStderr());
        put(o, "acc_norm", r.accNorm());
        put(o, "acc_norm_stderr", r.accNormStderr());
        put(o, "perplexity", r.perplexity());
      }
      root.put("seconds", seconds);
      out.println(json.writeValueAsString(root));
      return 0;
    }
    out.printf("model: %s%n", modelDir);
    out.printf(Locale.ROOT, "%-26s %6s %16s %16s %12s%n", "task", "docs", "acc", "acc_norm", "ppl");
    for (TaskResult r : results) {
      out.printf(
          Locale.ROOT,
          "%-26s %6d %16s %16s %12s%n",
          r.task(),
          r.documents(),
          withError(r.acc(), r.accStderr()),
          withError(r.accNorm(), r.accNormStderr()),
          Double.isNaN(r.perplexity()) ? "-" : String.format(Locale.ROOT, "%.3f", r.perplexity()));
    }
    out.printf(Locale.ROOT, "(acc ± standard error; %.1f s)%n", seconds);
    return 0;
  }

  private static String withError(double v, double se) {
    if (Double.isNaN(v)) {
      return "-";
    }
    return String.format(Locale.ROOT, "%.4f ± %.4f", v, se);
  }

  private static void put(ObjectNode o, String key, double v) {
    if (!Double.isNaN(v)) {
      o.put(key, v);
    }
  }
}
