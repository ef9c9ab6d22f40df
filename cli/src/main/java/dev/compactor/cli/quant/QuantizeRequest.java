package dev.compactor.cli.quant;

import dev.compactor.cli.Args;
import dev.compactor.cli.UsageException;
import dev.compactor.core.gguf.LlamaFileType;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.quant.table.WeightQuantization;
import dev.compactor.core.quant.table.WeightQuantization.Method;
import dev.compactor.core.recipe.QuantizeParams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A validated {@code compactor quantize} command line: every impossible combination is a {@link
 * UsageException} before any work starts.
 *
 * <p>Defaults: {@code --bits} 8 for fp8, 4 for nf4 (required otherwise); {@code --group-size} 128
 * for 4-bit integer methods, 64 for nf4, -1 (per output channel) for 8-bit and fp8; {@code --export
 * safetensors}; the grid follows the recipe default ({@link QuantizeParams#defaultSymmetric}:
 * symmetric, asymmetric only for awq), {@code --asymmetric} adds zero points and {@code
 * --symmetric} drops them. gptq and awq without {@code --calibration} calibrate on the bundled
 * English Europarl training text and say so on stderr.
 */
record QuantizeRequest(
    Path model,
    WeightQuantization quantization,
    Path calibration,
    boolean safetensors,
    boolean compressedTensors,
    List<LlamaFileType> gguf,
    Path out,
    boolean json) {

  static final Set<String> OPTIONS =
      Set.of("model", "method", "bits", "group-size", "calibration", "export", "out");
  static final Set<String> FLAGS = Set.of("json", "symmetric", "asymmetric");

  static QuantizeRequest parse(String[] argv) throws UsageException, IOException {
    Args args = Args.parse(argv, OPTIONS, FLAGS);
    Path model = args.requiredPath("model");
    Method method;
    try {
      method = Method.parse(args.required("method"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--method: " + e.getMessage());
    }
    int bits =
        switch (method) {
          case FP8 -> args.integer("bits", 8);
          case NF4 -> args.integer("bits", 4);
          default -> {
            if (!args.present("bits")) {
              throw new UsageException("missing required option --bits (4 or 8)");
            }
            yield args.integer("bits", 0);
          }
        };
    if (bits != 4 && bits != 8) {
      throw new UsageException("--bits must be 4 or 8, found " + bits);
    }
    int defaultGroup = method == Method.NF4 ? 64 : (bits == 4 && method != Method.FP8) ? 128 : -1;
    int group = args.integer("group-size", defaultGroup);
    if (group != -1 && group != 32 && group != 64 && group != 128) {
      throw new UsageException("--group-size must be -1, 32, 64 or 128, found " + group);
    }
    WeightQuantization q;
    try {
      int g = group == -1 ? 0 : group;
      if (args.has("symmetric") && args.has("asymmetric")) {
        throw new UsageException("--symmetric and --asymmetric exclude each other");
      }
      boolean symmetric =
          args.has("asymmetric")
              ? false
              : args.has("symmetric") || QuantizeParams.defaultSymmetric(method.id());
      q = new WeightQuantization(method, bits, g, symmetric);
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    Path calibration = args.present("calibration") ? Path.of(args.required("calibration")) : null;
    if (calibration != null && !Files.isRegularFile(calibration)) {
      throw new UsageException("--calibration: expected a text file, found none at " + calibration);
    }
    boolean safetensors = false;
    boolean compressed = false;
    Set<LlamaFileType> gguf = new LinkedHashSet<>();
    for (String e : args.string("export", "safetensors").split(",")) {
      String x = e.trim().toLowerCase(Locale.ROOT);
      if (x.equals("safetensors")) {
        safetensors = true;
      } else if (x.equals("compressed-tensors")) {
        compressed = true;
      } else if (x.startsWith("gguf:")) {
        try {
          gguf.add(LlamaFileType.parse(x.substring(5)));
        } catch (IllegalArgumentException ex) {
          throw new UsageException("--export " + x + ": " + ex.getMessage());
        }
      } else {
        throw new UsageException(
            "--export: unknown format '"
                + e
                + "'; expected safetensors, compressed-tensors or gguf:<f32|f16|q8_0|q6_k|q5_k_m|q5_k_s|q5_1|q5_0|q4_k_m|q4_k_s|q4_1|q4_0>");
      }
    }
    if (compressed && (method == Method.FP8 || method == Method.NF4)) {
      throw new UsageException(
          "--export compressed-tensors stores integer grids (rtn, gptq, awq); "
              + method.id()
              + " is not supported there yet");
    }
    Path out = args.requiredPath("out");
    if (Files.exists(out)) {
      try (var entries = Files.list(out)) {
        if (entries.findAny().isPresent()) {
          throw new UsageException("--out " + out + " must be absent or empty");
        }
      }
    }
    if (!Files.isRegularFile(model.resolve("config.json"))) {
      throw new UsageException("--model: expected a model directory with config.json at " + model);
    }
    ModelConfig config = ModelConfig.read(model);
    try {
      q.checkFits(config.linearInputWidths());
    } catch (IllegalArgumentException e) {
      throw new UsageException("--group-size: " + e.getMessage());
    }
    return new QuantizeRequest(
        model,
        q,
        calibration,
        safetensors,
        compressed,
        new ArrayList<>(gguf),
        out,
        args.has("json"));
  }

  /** Whether the layer-wise quantizer has to run (an HF-format export was asked for). */
  boolean quantizesLayers() {
    return safetensors || compressedTensors;
  }
}
