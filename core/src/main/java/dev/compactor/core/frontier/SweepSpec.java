package dev.compactor.core.frontier;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.compactor.core.recipe.InvalidRecipeException;
import dev.compactor.core.recipe.Recipe;
import dev.compactor.core.recipe.RecipeProblem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A sweep over recipe parameters: a base recipe, the values to try for some of its parameters, and
 * how to pick the combinations. Each combination becomes an ordinary recipe with a derived name,
 * validated by {@link Recipe#parse}; invalid combinations are kept with their problems, to be
 * reported and skipped, not run.
 *
 * <pre>{@code
 * name: tiny-frontier
 * base: ../demo.yaml                # a file beside this one, or the recipe inline as a mapping
 * vary:
 *   stages[0].prune.sparsity: [0.3, 0.5, 0.7]
 *   stages[1].quantize.bits:  [4, 8]
 * mode: grid                        # grid (every combination) | random (budget of them, seeded)
 *                                   # | bayesian (budget jobs, each chosen from those that ended)
 * budget: 12                        # random/bayesian: how many (bayesian: >= 2); grid: the most
 *                                   # it may have [its size]
 * seed: 1                           # random and bayesian [1]
 * }</pre>
 *
 * A path names a value of the base recipe: keys joined by '.', list items by {@code [i]}. Every
 * part but the last must exist in the base (so a typo is an error, not a new stage); the last may
 * be new. In bayesian mode {@link #expand} gives the whole grid, the candidates {@link
 * BayesianProposer} chooses from while the sweep runs.
 *
 * @param name the sweep's name
 * @param base the base recipe as a YAML tree
 * @param parameters what is varied, in the spec's order
 * @param mode how combinations are picked
 * @param budget how many combinations at most
 * @param seed random mode's seed
 */
public record SweepSpec(
    String name, ObjectNode base, List<Parameter> parameters, Mode mode, int budget, long seed) {

  /** How combinations are picked. */
  public enum Mode {
    /** Every combination, first parameter varying slowest. */
    GRID,
    /** {@code budget} distinct combinations drawn with {@code seed}, in grid order. */
    RANDOM,
    /**
     * {@code budget} jobs from the grid, each after the first seeded few chosen by constrained
     * expected improvement from the jobs that ended ({@link BayesianProposer}).
     */
    BAYESIAN
  }

  /**
   * One varied parameter.
   *
   * @param path e.g. {@code stages[0].prune.sparsity}
   * @param values the values to try, as YAML nodes
   */
  public record Parameter(String path, List<JsonNode> values) {
    public Parameter {
      values = List.copyOf(values);
    }
  }

  /**
   * One combination, made into recipes.
   *
   * @param index 0-based position in the grid
   * @param name the derived recipe name
   * @param assignment value per path
   * @param sweepYaml the recipe a sweep job runs: the base with these values and without publish
   * @param publishYaml the same recipe with the base's publish stage ({@code publish: {}} when the
   *     base has none): what is run to publish this combination
   * @param problems why the combination cannot run; empty when it is valid
   */
  public record Point(
      int index,
      String name,
      Map<String, JsonNode> assignment,
      String sweepYaml,
      String publishYaml,
      List<RecipeProblem> problems) {
    public Point {
      assignment = Collections.unmodifiableMap(new LinkedHashMap<>(assignment));
      problems = List.copyOf(problems);
    }

    public boolean valid() {
      return problems.isEmpty();
    }
  }

  /** The most combinations a grid may have before it is refused (random mode draws from it). */
  public static final int MAX_GRID = 100_000;

  private static final YAMLMapper YAML =
      YAMLMapper.builder().disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER).build();
  private static final Pattern SEGMENT =
      Pattern.compile("([A-Za-z_][A-Za-z0-9_-]*)((?:\\[\\d+])*)");
  private static final Pattern INDEX = Pattern.compile("\\[(\\d+)]");
  private static final Set<String> KEYS = Set.of("name", "base", "vary", "mode", "budget", "seed");

  public SweepSpec {
    parameters = List.copyOf(parameters);
  }

  /** Reads a spec file; a {@code base:} file name is resolved beside it. */
  public static SweepSpec parse(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    Path dir = file.toAbsolutePath().getParent();
    return parse(
        text,
        ref -> {
          try {
            return Files.readString(dir.resolve(ref), StandardCharsets.UTF_8);
          } catch (IOException e) {
            throw new IllegalArgumentException(
                "base: cannot read " + dir.resolve(ref) + ": " + e.getMessage(), e);
          }
        });
  }

  /**
   * Parses a spec.
   *
   * @param readBase reads the base recipe a {@code base:} string names
   * @throws IllegalArgumentException naming the field that is wrong and what was expected
   */
  public static SweepSpec parse(String yaml, java.util.function.Function<String, String> readBase) {
    JsonNode root = read(yaml, "the sweep spec");
    if (!root.isObject()) {
      throw new IllegalArgumentException("sweep spec: expected a mapping with name, base, vary");
    }
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String k = it.next();
      if (!KEYS.contains(k)) {
        throw new IllegalArgumentException(
            "sweep spec: unknown field '"
                + k
                + "'; expected one of "
                + new java.util.TreeSet<>(KEYS));
      }
    }
    String name = text(root, "name");
    JsonNode b = root.get("base");
    if (b == null || b.isNull()) {
      throw new IllegalArgumentException(
          "base: expected a recipe file name or mapping, found none");
    }
    JsonNode base = b.isTextual() ? read(readBase.apply(b.asText()), "base " + b.asText()) : b;
    if (!base.isObject()) {
      throw new IllegalArgumentException("base: expected a recipe mapping, found " + base);
    }
    JsonNode vary = root.get("vary");
    if (vary == null || !vary.isObject() || vary.isEmpty()) {
      throw new IllegalArgumentException(
          "vary: expected a mapping of paths to lists, e.g. {stages[0].prune.sparsity: [0.3, 0.5]}");
    }
    List<Parameter> params = new ArrayList<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = vary.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String at = "vary." + e.getKey();
      if (!e.getValue().isArray() || e.getValue().isEmpty()) {
        throw new IllegalArgumentException(at + ": expected a non-empty list of values");
      }
      List<JsonNode> values = new ArrayList<>();
      e.getValue().forEach(values::add);
      if (new HashSet<>(values).size() != values.size()) {
        throw new IllegalArgumentException(at + ": a value is listed twice in " + e.getValue());
      }
      checkPath((ObjectNode) base, e.getKey(), at);
      params.add(new Parameter(e.getKey(), values));
    }
    String modeText = root.hasNonNull("mode") ? root.get("mode").asText() : "grid";
    Mode mode =
        switch (modeText) {
          case "grid" -> Mode.GRID;
          case "random" -> Mode.RANDOM;
          case "bayesian" -> Mode.BAYESIAN;
          default ->
              throw new IllegalArgumentException(
                  "not supported: mode=" + modeText + " (expected grid, random or bayesian)");
        };
    long size = 1;
    for (Parameter p : params) {
      size *= p.values().size();
      if (size > MAX_GRID) {
        throw new IllegalArgumentException(
            "vary: more than " + MAX_GRID + " combinations; vary fewer values");
      }
    }
    JsonNode budgetNode = root.get("budget");
    int budget;
    if (budgetNode == null || budgetNode.isNull()) {
      if (mode != Mode.GRID) {
        throw new IllegalArgumentException(
            "budget: "
                + modeText
                + " mode needs a budget (how many recipes)"
                + (mode == Mode.BAYESIAN ? ", at least 2" : ""));
      }
      budget = (int) size;
    } else {
      if (!budgetNode.canConvertToInt()
          || !budgetNode.isIntegralNumber()
          || budgetNode.asInt() < 1) {
        throw new IllegalArgumentException("budget: expected an integer >= 1, found " + budgetNode);
      }
      budget = budgetNode.asInt();
      if (mode == Mode.BAYESIAN && budget < 2) {
        throw new IllegalArgumentException(
            "budget: bayesian mode needs at least 2 jobs (a model is fitted on ended ones), found "
                + budget);
      }
    }
    if (mode == Mode.GRID && size > budget) {
      throw new IllegalArgumentException(
          "budget: the grid has "
              + size
              + " combinations but the budget is "
              + budget
              + "; raise the budget or use mode: random");
    }
    JsonNode seedNode = root.get("seed");
    if (seedNode != null && !seedNode.isIntegralNumber()) {
      throw new IllegalArgumentException("seed: expected an integer, found " + seedNode);
    }
    long seed = seedNode == null ? 1 : seedNode.asLong();
    return new SweepSpec(name, (ObjectNode) base, params, mode, budget, seed);
  }

  /** How many combinations the grid has. */
  public int gridSize() {
    int n = 1;
    for (Parameter p : parameters) {
      n *= p.values().size();
    }
    return n;
  }

  /** The combinations this spec picks, each made into recipes and validated. */
  public List<Point> expand() {
    int size = gridSize();
    List<Integer> picked = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      picked.add(i);
    }
    if (mode == Mode.RANDOM && budget < size) {
      Collections.shuffle(picked, new Random(seed));
      picked = new ArrayList<>(picked.subList(0, budget));
      Collections.sort(picked);
    }
    List<String> tokens = tokenNames();
    String baseName = base.hasNonNull("name") ? base.get("name").asText() : name;
    Set<String> names = new HashSet<>();
    List<Point> out = new ArrayList<>();
    for (int index : picked) {
      Map<String, JsonNode> assignment = new LinkedHashMap<>();
      int rest = index;
      int[] choice = new int[parameters.size()];
      for (int p = parameters.size() - 1; p >= 0; p--) {
        int n = parameters.get(p).values().size();
        choice[p] = rest % n;
        rest /= n;
      }
      StringBuilder nm = new StringBuilder(baseName == null ? "sweep" : baseName);
      ObjectNode recipe = base.deepCopy();
      for (int p = 0; p < parameters.size(); p++) {
        Parameter param = parameters.get(p);
        JsonNode v = param.values().get(choice[p]);
        assignment.put(param.path(), v);
        set(recipe, param.path(), v.deepCopy());
        nm.append('-').append(tokens.get(p)).append(valueToken(v));
      }
      String derived = nm.toString();
      if (derived.length() > 128 || !names.add(derived)) {
        derived = (baseName == null ? "sweep" : baseName) + "-" + index;
        names.add(derived);
      }
      recipe.put("name", derived);
      ObjectNode sweep = recipe.deepCopy();
      ObjectNode publish = recipe.deepCopy();
      ArrayNode stages = sweep.get("stages") instanceof ArrayNode a ? a : null;
      boolean hadPublish = false;
      if (stages != null) {
        for (int i = stages.size() - 1; i >= 0; i--) {
          if (stages.get(i).has("publish")) {
            stages.remove(i);
            hadPublish = true;
          }
        }
      }
      if (!hadPublish && publish.get("stages") instanceof ArrayNode a) {
        a.addObject().putObject("publish");
      }
      String sweepYaml = write(sweep);
      String publishYaml = write(publish);
      List<RecipeProblem> problems = new ArrayList<>(problems(sweepYaml));
      if (problems.isEmpty()) {
        problems.addAll(problems(publishYaml));
      }
      out.add(new Point(index, derived, assignment, sweepYaml, publishYaml, problems));
    }
    return out;
  }

  /** The name part per parameter: its last key, with the key before it when two share it. */
  private List<String> tokenNames() {
    List<String> leaf = new ArrayList<>();
    for (Parameter p : parameters) {
      List<String> parts = keys(p.path());
      leaf.add(parts.get(parts.size() - 1));
    }
    List<String> out = new ArrayList<>();
    for (int i = 0; i < parameters.size(); i++) {
      String l = leaf.get(i);
      if (Collections.frequency(leaf, l) > 1) {
        List<String> parts = keys(parameters.get(i).path());
        l = parts.size() > 1 ? parts.get(parts.size() - 2) + "." + l : l;
      }
      out.add(l.replace("_", ""));
    }
    return out;
  }

  private static String valueToken(JsonNode v) {
    String t;
    if (v.isArray()) {
      List<String> parts = new ArrayList<>();
      v.forEach(x -> parts.add(x.asText()));
      t = String.join("_", parts);
    } else if (v.isValueNode()) {
      t = v.asText();
    } else {
      t = v.toString();
    }
    return t.replaceAll("[^A-Za-z0-9._-]", "_");
  }

  private static List<RecipeProblem> problems(String yaml) {
    try {
      Recipe.parse(yaml);
      return List.of();
    } catch (InvalidRecipeException e) {
      return e.problems();
    }
  }

  /** The keys of a path, without list indices. */
  private static List<String> keys(String path) {
    List<String> out = new ArrayList<>();
    for (String seg : path.split("\\.", -1)) {
      Matcher m = SEGMENT.matcher(seg);
      if (m.matches()) {
        out.add(m.group(1));
      }
    }
    return out;
  }

  /** One step of a path: a key, or an index into a list. */
  private record Step(String key, int index) {}

  private static List<Step> steps(String path, String at) {
    List<Step> out = new ArrayList<>();
    for (String seg : path.split("\\.", -1)) {
      Matcher m = SEGMENT.matcher(seg);
      if (!m.matches()) {
        throw new IllegalArgumentException(
            at + ": expected a path like stages[0].prune.sparsity, found '" + path + "'");
      }
      out.add(new Step(m.group(1), -1));
      Matcher i = INDEX.matcher(m.group(2));
      while (i.find()) {
        out.add(new Step(null, Integer.parseInt(i.group(1))));
      }
    }
    return out;
  }

  private static void checkPath(ObjectNode base, String path, String at) {
    List<Step> steps = steps(path, at);
    JsonNode n = base;
    StringBuilder seen = new StringBuilder();
    for (int s = 0; s < steps.size() - 1; s++) {
      Step st = steps.get(s);
      JsonNode next = st.key() != null ? n.get(st.key()) : n.get(st.index());
      seen.append(
          st.key() != null ? (seen.isEmpty() ? "" : ".") + st.key() : "[" + st.index() + "]");
      if (next == null || !(next.isObject() || next.isArray())) {
        throw new IllegalArgumentException(
            at
                + ": the base recipe has no "
                + seen
                + describe(n, st)
                + "; a sweep varies values the base has");
      }
      n = next;
    }
    Step last = steps.get(steps.size() - 1);
    if (last.key() == null ? !n.isArray() || last.index() >= n.size() : !n.isObject()) {
      throw new IllegalArgumentException(at + ": the base recipe has no " + path);
    }
  }

  private static String describe(JsonNode parent, Step st) {
    if (st.key() != null && parent.isObject() && parent.size() == 1) {
      return " (there: " + parent.fieldNames().next() + ")";
    }
    if (st.key() == null && parent.isArray()) {
      return " (the list has " + parent.size() + " items)";
    }
    return "";
  }

  private static void set(ObjectNode root, String path, JsonNode value) {
    List<Step> steps = steps(path, path);
    JsonNode n = root;
    for (int s = 0; s < steps.size() - 1; s++) {
      Step st = steps.get(s);
      n = st.key() != null ? n.get(st.key()) : n.get(st.index());
    }
    Step last = steps.get(steps.size() - 1);
    if (last.key() != null) {
      ((ObjectNode) n).set(last.key(), value);
    } else {
      ((ArrayNode) n).set(last.index(), value);
    }
  }

  private static String text(JsonNode root, String key) {
    JsonNode n = root.get(key);
    if (n == null || !n.isTextual() || n.asText().isBlank()) {
      throw new IllegalArgumentException(key + ": expected a name, found " + n);
    }
    return n.asText();
  }

  private static JsonNode read(String yaml, String what) {
    try {
      JsonNode n = YAML.readTree(yaml);
      if (n == null || n.isMissingNode()) {
        throw new IllegalArgumentException(what + " is empty");
      }
      return n;
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(what + ": not valid YAML: " + e.getOriginalMessage(), e);
    }
  }

  private static String write(ObjectNode recipe) {
    try {
      return YAML.writeValueAsString(recipe);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write a recipe tree as YAML", e);
    }
  }
}
