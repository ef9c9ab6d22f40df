package dev.compactor.core.share;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.factorize.Factorization;
import dev.compactor.core.factorize.LowRankFactorizer;
import dev.compactor.core.factorize.RankRule;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.ModelDirectory;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.SharedTensorSource;
import dev.compactor.core.io.TensorInfo;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.prune.Pruning;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Cross-layer weight sharing of a model directory's decoder linears, written so that the saved
 * model truly holds fewer parameters: a tensor several layers use is stored once, and config.json's
 * {@value SharedTensorSource#KEY} maps every other layer's name for it to the stored one (layout
 * and checks in {@link SharedTensorSource}, which {@link Checkpoints#open} uses to read it).
 *
 * <ul>
 *   <li>{@link Form#MATRIX}: groups of adjacent layers use one matrix per linear kind, their mean;
 *       the groups are chosen by weight similarity under the parameter budget ({@link
 *       MatrixSharing}). The first layer of a group stores {@code X.weight}; the others refer to
 *       it.
 *   <li>{@link Form#BASIS}: Basis Sharing ({@link BasisSharing}); each group of {@code group}
 *       adjacent layers stores one basis per linear kind and a coefficient matrix per layer, in the
 *       low-rank format ({@code X.u.weight}/{@code X.v.weight}, ranks in {@value
 *       ModelConfig#LOW_RANK}); the shared factor is stored in the group's first layer and referred
 *       to by the others. The rank per kind spends {@code ratio} of the group's dense parameters.
 * </ul>
 *
 * {@link #merge} writes a shared model back without references (matrix form: dense copies; basis
 * form: dense products {@code X.weight = u v}), for runtimes other than this project's.
 *
 * <p>Dense Llama-family models only (as {@link Factorization#requireSupported}); an input that
 * already has references is refused.
 */
public final class CrossLayerSharing {

  static final long MAX_SHARD_BYTES = 5_000_000_000L;

  /** The two forms of sharing. */
  public enum Form {
    MATRIX,
    BASIS;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** {@code matrix} or {@code basis}. */
    public static Form parse(String s) {
      for (Form f : values()) {
        if (f.key().equals(s)) {
          return f;
        }
      }
      throw new IllegalArgumentException("form: expected matrix or basis, found " + s);
    }
  }

  /**
   * What to share.
   *
   * @param form shared matrix or shared basis
   * @param ratio share of the decoder-linear parameters kept, in (0, 1)
   * @param group basis: layers per group (the last group takes the remainder); matrix: the largest
   *     group allowed
   * @param side basis: which factor is shared (ignored by the matrix form)
   * @param choose basis: share a group only where the shared basis's weight error is below that of
   *     a plain truncated SVD per layer at the same ratio, else factorize its layers one by one
   */
  public record Spec(Form form, double ratio, int group, BasisSharing.Side side, boolean choose) {

    /** A spec that shares every group ({@code choose} off). */
    public Spec(Form form, double ratio, int group, BasisSharing.Side side) {
      this(form, ratio, group, side, false);
    }

    public Spec {
      if (form == null || side == null) {
        throw new IllegalArgumentException("form and side are required");
      }
      if (!(ratio > 0 && ratio < 1)) {
        throw new IllegalArgumentException("ratio: expected a fraction in (0, 1), found " + ratio);
      }
      if (group < 1 || (form == Form.BASIS && group < 2)) {
        throw new IllegalArgumentException(
            "group: expected >= " + (form == Form.BASIS ? 2 : 1) + ", found " + group);
      }
    }
  }

  /**
   * One group of one linear kind.
   *
   * @param rank basis rank (0 for the matrix form)
   * @param relativeError {@code sum ||W_l - W'_l||^2 / sum ||W_l||^2} over the group's layers
   */
  public record Group(String linear, int from, int to, int rank, double relativeError) {}

  /**
   * What a sharing did. Parameters count tensors as stored (a shared one once); "linear" counts the
   * decoder linears' weights only.
   */
  public record Report(
      Spec spec,
      List<Group> groups,
      int references,
      long parametersBefore,
      long parametersAfter,
      long linearParametersBefore,
      long linearParametersAfter,
      long bytesBefore,
      long bytesAfter) {

    public ObjectNode toJson() {
      ObjectNode o = new ObjectMapper().createObjectNode();
      o.put("form", spec.form().key());
      o.put("ratio", spec.ratio());
      o.put("group", spec.group());
      if (spec.form() == Form.BASIS) {
        o.put("side", spec.side().key());
        o.put("choose", spec.choose());
      }
      o.put("references", references);
      o.put("parameters_before", parametersBefore);
      o.put("parameters_after", parametersAfter);
      o.put("linear_parameters_before", linearParametersBefore);
      o.put("linear_parameters_after", linearParametersAfter);
      o.put("weight_bytes_before", bytesBefore);
      o.put("weight_bytes_after", bytesAfter);
      ArrayNode g = o.putArray("groups");
      for (Group x : groups) {
        ObjectNode n = g.addObject();
        n.put("linear", x.linear());
        n.put("from", x.from());
        n.put("to", x.to());
        if (x.rank() > 0) {
          n.put("rank", x.rank());
        }
        n.put("relative_error", x.relativeError());
      }
      return o;
    }
  }

  private CrossLayerSharing() {}

  /** Shares {@code inputDir}'s decoder linears into {@code outputDir} (absent or empty). */
  public static Report run(Spec spec, Path inputDir, Path outputDir) throws IOException {
    ModelDirectory model = ModelDirectory.open(inputDir);
    requireUnshared(inputDir);
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    Factorization.requireSupported(c);
    c.requireUniformWidths("cross-layer sharing");
    requireEmpty(outputDir);
    try {
      return write(spec, model, c, outputDir);
    } catch (IOException | RuntimeException e) {
      Pruning.deleteTree(outputDir);
      throw e;
    }
  }

  /** Refuses a directory whose config.json has references its weights resolve. */
  static void requireUnshared(Path dir) throws IOException {
    Map<String, String> refs = SharedTensorSource.references(dir);
    if (refs.isEmpty()) {
      return;
    }
    try (TensorSource stored = Checkpoints.openStored(dir)) {
      for (String ref : refs.keySet()) {
        if (!stored.contains(ref)) {
          throw new UnsupportedOperationException(
              "not supported: sharing an already shared model ("
                  + SharedTensorSource.KEY
                  + " refers "
                  + ref
                  + " to "
                  + refs.get(ref)
                  + "); share its --merge output or the original");
        }
      }
    }
  }

  private static void requireEmpty(Path dir) throws IOException {
    if (Files.exists(dir)) {
      try (var entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new IOException("output directory " + dir + " must be empty or absent");
        }
      }
    }
  }

  private static Report write(Spec spec, ModelDirectory model, ModelConfig c, Path outputDir)
      throws IOException {
    int layers = c.numLayers();
    List<String> linears = Layout.linears(c, 0);
    Map<String, String> references = new LinkedHashMap<>();
    Map<String, Integer> ranks = new LinkedHashMap<>();
    List<Group> groups = new ArrayList<>();
    long linearBefore = 0;
    // matrix form: every kind's weights, kept until all are read and the groups are planned
    Map<String, PendingKind> pendingKinds = new LinkedHashMap<>();
    try (TensorSource src = model.weights()) {
      // per kind, per layer: the tensors to write (suffix -> values), all computed before writing
      Map<String, List<Map<String, float[]>>> planned = new LinkedHashMap<>();
      for (String linear : linears) {
        List<float[]> ws = new ArrayList<>();
        int[] shape = null;
        for (int i = 0; i < layers; i++) {
          String name = Layout.layerPrefix(c, "", i) + linear + ".weight";
          TensorInfo t = src.info(name);
          long[] s = t.shape();
          shape = new int[] {Math.toIntExact(s[0]), Math.toIntExact(s[1])};
          ws.add(src.readFloats(name));
        }
        linearBefore += (long) layers * shape[0] * shape[1];
        List<Map<String, float[]>> perLayer = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
          perLayer.add(new LinkedHashMap<>());
        }
        planned.put(linear, perLayer);
        if (spec.form() == Form.BASIS) {
          for (int from = 0; from < layers; from += spec.group()) {
            int to = Math.min(layers, from + spec.group());
            List<float[]> members = ws.subList(from, to);
            int r = BasisSharing.rank(spec.side(), to - from, shape[0], shape[1], spec.ratio());
            BasisSharing.Factors f =
                BasisSharing.share(spec.side(), members, shape[0], shape[1], r);
            if (spec.choose()) {
              List<LowRankFactorizer.Factors> own = new ArrayList<>();
              double lost = 0;
              double energy = 0;
              for (float[] w : members) {
                LowRankFactorizer.Factors p =
                    LowRankFactorizer.plain(w, shape[0], shape[1], RankRule.ratio(spec.ratio()));
                double e = 0;
                for (float x : w) {
                  e += (double) x * x;
                }
                lost += (1 - p.energy()) * e;
                energy += e;
                own.add(p.dense() ? null : p);
              }
              if (!own.contains(null) && energy > 0 && lost / energy < 1 - f.energy()) {
                for (int l = from; l < to; l++) {
                  LowRankFactorizer.Factors p = own.get(l - from);
                  ranks.put(Layout.layerPrefix(c, "", l) + linear, p.rank());
                  perLayer.get(l).put(".v.weight", p.v());
                  perLayer.get(l).put(".u.weight", p.u());
                  groups.add(new Group(linear, l, l + 1, p.rank(), 1 - p.energy()));
                }
                continue;
              }
            }
            groups.add(new Group(linear, from, to, r, 1 - f.energy()));
            String shared = spec.side() == BasisSharing.Side.OUT ? ".u.weight" : ".v.weight";
            for (int l = from; l < to; l++) {
              String prefix = Layout.layerPrefix(c, "", l) + linear;
              ranks.put(prefix, r);
              perLayer.get(l).put(".v.weight", f.v().get(l - from));
              perLayer.get(l).put(".u.weight", f.u().get(l - from));
              if (l > from && to - from > 1) {
                references.put(prefix + shared, Layout.layerPrefix(c, "", from) + linear + shared);
              }
            }
          }
        } else {
          pendingKinds.put(linear, new PendingKind(shape, ws));
        }
      }
      if (spec.form() == Form.MATRIX) {
        List<MatrixSharing.Kind> kinds = new ArrayList<>();
        for (Map.Entry<String, PendingKind> e : pendingKinds.entrySet()) {
          int[] s = e.getValue().shape();
          kinds.add(
              new MatrixSharing.Kind(
                  e.getKey(), (long) s[0] * s[1], MatrixSharing.dots(e.getValue().ws())));
        }
        long budget = (long) Math.floor(spec.ratio() * linearBefore);
        for (MatrixSharing.Group g : MatrixSharing.plan(kinds, budget, spec.group())) {
          groups.add(new Group(g.linear(), g.from(), g.to(), 0, g.relativeError()));
          List<float[]> ws = pendingKinds.get(g.linear()).ws();
          planned
              .get(g.linear())
              .get(g.from())
              .put(".weight", MatrixSharing.mean(ws.subList(g.from(), g.to())));
          String owner = Layout.layerPrefix(c, "", g.from()) + g.linear() + ".weight";
          for (int l = g.from() + 1; l < g.to(); l++) {
            references.put(Layout.layerPrefix(c, "", l) + g.linear() + ".weight", owner);
          }
        }
      }
      Map<String, String> metadata = new LinkedHashMap<>(src.metadata());
      metadata.put("compactor.share.form", spec.form().key());
      metadata.put("compactor.share.ratio", Double.toString(spec.ratio()));
      metadata.put("compactor.share.group", Integer.toString(spec.group()));
      try (SafetensorsWriter out = new SafetensorsWriter(outputDir, MAX_SHARD_BYTES, metadata)) {
        for (Layout.Spec s : Layout.globals(c, "")) {
          out.copy(src, s.name());
        }
        for (int i = 0; i < layers; i++) {
          String prefix = Layout.layerPrefix(c, "", i);
          for (Layout.Spec s : Layout.layer(c, i)) {
            String name = s.name();
            String linear = name.endsWith(".weight") ? name.substring(0, name.length() - 7) : null;
            List<Map<String, float[]>> perLayer = linear == null ? null : planned.get(linear);
            if (perLayer == null) {
              out.copy(src, prefix + name);
              continue;
            }
            DType dtype = storage(src.info(prefix + name));
            long out0 = s.shape()[0];
            long in0 = s.shape()[1];
            Map<String, float[]> mine = perLayer.get(i);
            if (spec.form() == Form.MATRIX) {
              if (!references.containsKey(prefix + name)) {
                out.write(prefix + name, dtype, s.shape(), mine.get(".weight"));
              }
              continue;
            }
            int r = ranks.get(prefix + linear);
            if (!references.containsKey(prefix + linear + ".v.weight")) {
              out.write(
                  prefix + linear + ".v.weight", dtype, new long[] {r, in0}, mine.get(".v.weight"));
            }
            if (!references.containsKey(prefix + linear + ".u.weight")) {
              out.write(
                  prefix + linear + ".u.weight",
                  dtype,
                  new long[] {out0, r},
                  mine.get(".u.weight"));
            }
          }
        }
      }
    }
    ObjectNode config = (ObjectNode) model.configJson().deepCopy();
    if (!ranks.isEmpty()) {
      ObjectNode r = config.putObject(ModelConfig.LOW_RANK);
      ranks.forEach(r::put);
    }
    if (!references.isEmpty()) {
      ObjectNode refs = config.putObject(SharedTensorSource.KEY);
      references.forEach(refs::put);
    }
    ModelDirectory.writeConfig(outputDir, config);
    model.copyAuxiliaryFilesTo(outputDir);
    long before = 0;
    for (int i = 0; i < layers; i++) {
      for (Layout.Spec s : Layout.layer(c, i)) {
        before += numel(s.shape());
      }
    }
    for (Layout.Spec s : Layout.globals(c, "")) {
      before += numel(s.shape());
    }
    long after = storedParameters(outputDir);
    long linearAfter = linearBefore - (before - after);
    long bytesAfter = ModelDirectory.open(outputDir).totalWeightBytes();
    return new Report(
        spec,
        groups,
        references.size(),
        before,
        after,
        linearBefore,
        linearAfter,
        model.totalWeightBytes(),
        bytesAfter);
  }

  private record PendingKind(int[] shape, List<float[]> ws) {}

  /** Elements of every tensor {@code dir} stores (a shared tensor once), from the headers. */
  public static long storedParameters(Path dir) throws IOException {
    long n = 0;
    try (TensorSource stored = Checkpoints.openStored(dir)) {
      for (String name : stored.names()) {
        n += stored.info(name).numel();
      }
    }
    return n;
  }

  /**
   * Writes {@code inputDir} (a shared model) to {@code outputDir} without references: a shared
   * matrix as a copy per layer; a low-rank linear whose factor was shared as the dense product
   * {@code X.weight = u v} (other low-rank linears stay factorized). Returns the references
   * removed.
   */
  public static int merge(Path inputDir, Path outputDir) throws IOException {
    ModelDirectory model = ModelDirectory.open(inputDir);
    Map<String, String> refs;
    try (TensorSource stored = Checkpoints.openStored(inputDir)) {
      refs = new LinkedHashMap<>();
      for (Map.Entry<String, String> e : SharedTensorSource.references(inputDir).entrySet()) {
        if (!stored.contains(e.getKey())) {
          refs.put(e.getKey(), e.getValue());
        }
      }
    }
    ModelConfig c = ModelConfig.fromJson(model.configJson().toString());
    requireEmpty(outputDir);
    Map<String, Integer> ranks = new LinkedHashMap<>(c.lowRank());
    // a factor pair is multiplied out when either factor is shared, in the owner's layer too
    java.util.Set<String> involved = new java.util.HashSet<>(refs.keySet());
    involved.addAll(refs.values());
    try (TensorSource src = model.weights();
        SafetensorsWriter out =
            new SafetensorsWriter(
                outputDir, MAX_SHARD_BYTES, new LinkedHashMap<>(src.metadata()))) {
      for (Layout.Spec s : Layout.globals(c, "")) {
        out.copy(src, s.name());
      }
      for (int i = 0; i < c.numLayers(); i++) {
        String prefix = Layout.layerPrefix(c, "", i);
        for (Layout.Spec s : Layout.layer(c, i)) {
          String name = prefix + s.name();
          String linear =
              name.endsWith(".v.weight") || name.endsWith(".u.weight")
                  ? name.substring(0, name.length() - ".v.weight".length())
                  : null;
          boolean sharedPair =
              linear != null
                  && (involved.contains(linear + ".u.weight")
                      || involved.contains(linear + ".v.weight"));
          if (!sharedPair) {
            out.copy(src, name);
            continue;
          }
          if (name.endsWith(".u.weight")) {
            int r = c.lowRank(linear);
            long[] u = src.info(linear + ".u.weight").shape();
            long[] v = src.info(linear + ".v.weight").shape();
            float[] w =
                LowRankFactorizer.product(
                    src.readFloats(linear + ".u.weight"),
                    src.readFloats(linear + ".v.weight"),
                    (int) u[0],
                    r,
                    (int) v[1]);
            out.write(linear + ".weight", storage(src.info(name)), new long[] {u[0], v[1]}, w);
            ranks.remove(linear);
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      Pruning.deleteTree(outputDir);
      throw e;
    }
    ObjectNode config = (ObjectNode) model.configJson().deepCopy();
    config.remove(ModelConfig.LOW_RANK);
    if (!ranks.isEmpty()) {
      ObjectNode r = config.putObject(ModelConfig.LOW_RANK);
      ranks.forEach(r::put);
    }
    ModelDirectory.writeConfig(outputDir, config);
    model.copyAuxiliaryFilesTo(outputDir);
    return refs.size();
  }

  private static DType storage(TensorInfo t) {
    DType d = t.dtype();
    return d == DType.F16 || d == DType.BF16 ? d : DType.F32;
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }
}
