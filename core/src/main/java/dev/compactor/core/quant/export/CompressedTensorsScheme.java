package dev.compactor.core.quant.export;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The one weight-only quantization scheme a compressed-tensors checkpoint written here uses for
 * every Linear (except those ignored), and its {@code quantization_config}.
 *
 * <p>Field names follow compressed-tensors' pydantic models ({@code QuantizationConfig} in
 * src/compressed_tensors/quantization/quant_config.py, {@code QuantizationArgs} in quant_args.py,
 * which forbids unknown keys): {@code quant_method: "compressed-tensors"}, {@code format}, {@code
 * quantization_status: "compressed"}, {@code config_groups.group_0 = {targets: ["Linear"], weights:
 * {num_bits, type: "int", symmetric, strategy: "group"|"channel", group_size, actorder, dynamic:
 * false, observer, observer_kwargs, block_structure}, input_activations: null, output_activations:
 * null}}, {@code ignore}.
 *
 * <p>Formats: {@link Format#PACK_QUANTIZED} ({@code "pack-quantized"}) is what vLLM serves for
 * weight-only int4 and int8 (its {@code CompressedTensorsWNA16} scheme, chosen only for this
 * format); {@link Format#INT_QUANTIZED} ({@code "int-quantized"}, int8 {@code weight} tensors) is
 * what compressed-tensors / transformers decompress, but vLLM treats it as an
 * activation-quantization format (W8A8) and does not serve it weight-only: use pack-quantized for
 * vLLM.
 *
 * @param format storage format
 * @param bits 4 or 8 (int-quantized: 8)
 * @param symmetric no zero points
 * @param groupSize columns per scale, 0 for one scale per output channel
 * @param actOrder null, {@code "weight"} or {@code "group"} (the latter carries {@code
 *     weight_g_idx})
 */
public record CompressedTensorsScheme(
    Format format, int bits, boolean symmetric, int groupSize, String actOrder) {

  /** On-disk layouts. */
  public enum Format {
    PACK_QUANTIZED("pack-quantized"),
    INT_QUANTIZED("int-quantized");

    private final String value;

    Format(String value) {
      this.value = value;
    }

    /** The {@code format} string of quantization_config. */
    public String value() {
      return value;
    }
  }

  public CompressedTensorsScheme {
    if (format == null) {
      throw new IllegalArgumentException("format must be given");
    }
    if (bits != 4 && bits != 8) {
      throw new UnsupportedOperationException("not supported yet: " + bits + "-bit weights");
    }
    if (format == Format.INT_QUANTIZED && bits != 8) {
      throw new IllegalArgumentException(
          "int-quantized stores int8 weights; use pack-quantized for " + bits + " bits");
    }
    if (groupSize < 0) {
      throw new IllegalArgumentException("group size must be >= 0, found " + groupSize);
    }
    if (actOrder != null && !actOrder.equals("weight") && !actOrder.equals("group")) {
      throw new IllegalArgumentException(
          "actorder must be null, \"weight\" or \"group\", found " + actOrder);
    }
    if ("group".equals(actOrder) && groupSize == 0) {
      throw new IllegalArgumentException("actorder \"group\" needs a group size");
    }
  }

  /** Symmetric int4 with groups, packed: the GPTQ/AWQ W4A16 checkpoint vLLM serves. */
  public static CompressedTensorsScheme w4a16(int groupSize) {
    return new CompressedTensorsScheme(Format.PACK_QUANTIZED, 4, true, groupSize, null);
  }

  /** The {@code quantization_config} object for config.json. */
  public ObjectNode quantizationConfig(java.util.List<String> ignore) {
    JsonNodeFactory f = JsonNodeFactory.instance;
    ObjectNode weights = f.objectNode();
    weights.put("num_bits", bits);
    weights.put("type", "int");
    weights.put("symmetric", symmetric);
    weights.put("strategy", groupSize == 0 ? "channel" : "group");
    if (groupSize == 0) {
      weights.putNull("group_size");
    } else {
      weights.put("group_size", groupSize);
    }
    weights.putNull("block_structure");
    weights.put("dynamic", false);
    if (actOrder == null) {
      weights.putNull("actorder");
    } else {
      weights.put("actorder", actOrder);
    }
    weights.put("observer", "minmax");
    weights.putObject("observer_kwargs");
    ObjectNode group = f.objectNode();
    group.putArray("targets").add("Linear");
    group.set("weights", weights);
    group.putNull("input_activations");
    group.putNull("output_activations");
    ObjectNode config = f.objectNode();
    config.put("quant_method", "compressed-tensors");
    config.put("format", format.value());
    config.putObject("config_groups").set("group_0", group);
    ignore.forEach(config.putArray("ignore")::add);
    config.putNull("kv_cache_scheme");
    config.put("quantization_status", "compressed");
    return config;
  }

  /** Checks that {@code q} was quantized the way this scheme declares. */
  void check(String name, QuantizedLinear q) {
    int expectedGroup = groupSize == 0 ? q.cols() : groupSize;
    boolean ok =
        q.bits() == bits
            && q.symmetric() == symmetric
            && q.groupSize() == expectedGroup
            && ((q.gIdx() != null) == "group".equals(actOrder));
    if (!ok) {
      throw new IllegalArgumentException(
          name
              + ": quantized as bits="
              + q.bits()
              + " symmetric="
              + q.symmetric()
              + " group="
              + q.groupSize()
              + " g_idx="
              + (q.gIdx() != null)
              + ", but the checkpoint's scheme is "
              + this);
    }
  }
}
