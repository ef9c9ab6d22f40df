package dev.compactor.cli.prune;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.prune.NmPattern;
import dev.compactor.core.prune.PruningOutput;
import dev.compactor.core.prune.PruningSpec;
import dev.compactor.core.prune.PruningSpec.Method;
import dev.compactor.core.prune.depth.DepthMethod;
import dev.compactor.core.prune.depth.TokenPositions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/**
 * A validated {@code compactor prune} command line: every impossible combination is a {@link
 * UsageException} before any work starts.
 *
 * <p>Exactly one of {@code --sparsity S} (unstructured, per output row, S in (0, 1)) and {@code
 * --pattern N:M} (semi-structured) is required. Wanda and SparseGPT calibrate on {@code
 * --calibration FILE} or, without it, on the bundled English Europarl training text; {@code
 * --samples} windows of {@code --seq-len} tokens (the pruning stage's defaults, 16 of 128, the
 * length capped at the model's context). Magnitude reads no text, so the calibration options are
 * refused with it. Structured pruning ({@code --heads}, {@code --channels}) is {@link
 * StructuredPruneRequest}. {@code --drop-layers N} is depth pruning ({@link Depth}): it excludes
 * the weight-pruning options, calibrates like Wanda and leaves {@link #spec} null.
 *
 * <p>{@code --format dense|sparse-24-bitmask|sparse-bitmask} says how the result is stored ({@link
 * PruningOutput}); {@code --wbits 4|8 [--group-size G] [--asymmetric]} (sparsegpt only, format
 * dense) quantizes the kept weights in the same sweep.
 */
record PruneRequest(
    Path model,
    PruningSpec spec,
    Path calibration,
    int samples,
    int seqLen,
    Path out,
    boolean json,
    PruningOutput output,
    Depth depth) {

  static final Set<String> OPTIONS =
      Set.of(
          "model",
          "method",
          "sparsity",
          "pattern",
          "calibration",
          "samples",
          "seq-len",
          "out",
          "format",
          "wbits",
          "group-size");
  static final Set<String> FLAGS = Set.of("json", "asymmetric");

  /** Depth pruning's options ({@code --drop-layers N} selects it). */
  static final Set<String> DEPTH_OPTIONS =
      Set.of(
          "model",
          "drop-layers",
          "depth-method",
          "depth-tokens",
          "calibration",
          "samples",
          "seq-len",
          "out");

  static final Set<String> DEPTH_FLAGS = Set.of("json");

  /**
   * {@code --drop-layers N [--depth-method block_influence|angular] [--depth-tokens all|last]}:
   * remove N whole decoder layers; N = 0 only prints the layer scores (no {@code --out}).
   */
  record Depth(int drop, DepthMethod method, TokenPositions positions) {
    boolean scoresOnly() {
      return drop == 0;
    }
  }

  static PruneRequest parse(String[] argv) throws UsageException, IOException {
    if (named(argv, "drop-layers")) {
      return parseDepth(argv);
    }
    Args args = Args.parse(argv, OPTIONS, FLAGS);
    Path model = args.requiredPath("model");
    Method method;
    try {
      method = Method.parse(args.required("method"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--method: " + e.getMessage());
    }
    boolean hasSparsity = args.present("sparsity");
    boolean hasPattern = args.present("pattern");
    if (hasSparsity == hasPattern) {
      throw new UsageException(
          hasSparsity
              ? "--sparsity and --pattern exclude each other (an N:M pattern fixes the sparsity)"
              : "one of --sparsity S (0 < S < 1) or --pattern N:M (e.g. 2:4) is required");
    }
    PruningSpec spec;
    if (hasPattern) {
      try {
        spec = PruningSpec.of(method, NmPattern.parse(args.required("pattern")));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--pattern: " + e.getMessage());
      }
    } else {
      double sparsity = args.number("sparsity", 0);
      try {
        spec = PruningSpec.of(method, sparsity);
      } catch (IllegalArgumentException e) {
        throw new UsageException("--sparsity: " + e.getMessage());
      }
    }
    boolean calibrated = method != Method.MAGNITUDE;
    if (!calibrated) {
      for (String o : new String[] {"calibration", "samples", "seq-len"}) {
        if (args.present(o)) {
          throw new UsageException(
              "--" + o + ": magnitude pruning reads no calibration text (wanda and sparsegpt do)");
        }
      }
    }
    PruneArgs.Calibration cal = PruneArgs.calibration(args);
    Path calibration = cal.file();
    int samples = cal.samples();
    int seqLen = cal.seqLen();
    Path out = PruneArgs.emptyOut(args);
    PruneArgs.requireModelDir(model);
    PruningOutput output = output(args, spec);
    return new PruneRequest(
        model, spec, calibration, samples, seqLen, out, args.has("json"), output, null);
  }

  /** Whether {@code --name} or {@code --name=...} is on the command line. */
  private static boolean named(String[] argv, String name) {
    for (String a : argv) {
      if (a.equals("--" + name) || a.startsWith("--" + name + "=")) {
        return true;
      }
    }
    return false;
  }

  /** {@code --drop-layers}: depth pruning, which scores layers and never zeroes weights. */
  private static PruneRequest parseDepth(String[] argv) throws UsageException, IOException {
    for (String o : new String[] {"method", "sparsity", "pattern", "heads", "channels"}) {
      if (named(argv, o)) {
        throw new UsageException(
            "--"
                + o
                + " and --drop-layers exclude each other (depth pruning removes whole"
                + " layers; choose them with --depth-method block_influence|angular)");
      }
    }
    Args args = Args.parse(argv, DEPTH_OPTIONS, DEPTH_FLAGS);
    Path model = args.requiredPath("model");
    int drop = args.integer("drop-layers", 0);
    if (drop < 0) {
      throw new UsageException("--drop-layers must be 0 (scores only) or more, found " + drop);
    }
    DepthMethod method;
    TokenPositions positions;
    try {
      method = DepthMethod.parse(args.string("depth-method", "block_influence"));
      positions = TokenPositions.parse(args.string("depth-tokens", "all"));
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    PruneArgs.Calibration cal = PruneArgs.calibration(args);
    Path calibration = cal.file();
    int samples = cal.samples();
    int seqLen = cal.seqLen();
    PruneArgs.requireModelDir(model);
    Path out = null;
    if (drop == 0) {
      if (args.present("out")) {
        throw new UsageException(
            "--out: --drop-layers 0 only prints the layer scores; give N >= 1 to write a model");
      }
    } else {
      out = PruneArgs.emptyOut(args);
    }
    return new PruneRequest(
        model,
        null,
        calibration,
        samples,
        seqLen,
        out,
        args.has("json"),
        PruningOutput.DENSE,
        new Depth(drop, method, positions));
  }

  private static PruningOutput output(Args args, PruningSpec spec) throws UsageException {
    if (!args.present("wbits") && (args.present("group-size") || args.has("asymmetric"))) {
      throw new UsageException(
          (args.present("group-size") ? "--group-size" : "--asymmetric")
              + " needs --wbits (sparsegpt's joint quantization)");
    }
    try {
      PruningOutput o =
          new PruningOutput(
              PruningOutput.Format.parse(
                  args.present("format") ? args.required("format") : "dense"),
              args.integer("wbits", 0),
              args.integer("group-size", 0),
              !args.has("asymmetric"));
      o.check(spec);
      return o;
    } catch (IllegalArgumentException | UnsupportedOperationException e) {
      throw new UsageException(e.getMessage());
    }
  }

  /** Whether the method reads calibration text. */
  boolean calibrated() {
    return depth != null || spec.method() != Method.MAGNITUDE;
  }
}
