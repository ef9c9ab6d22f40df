package dev.compactor.core.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A sharded safetensors checkpoint read through its {@code model.safetensors.index.json}:
 *
 * <pre>
 * { "metadata": { "total_size": 123456 },                       (optional)
 *   "weight_map": { "tensor.name": "model-00001-of-00002.safetensors", ... } }
 * </pre>
 *
 * Validated on open: the JSON shape; every shard name is a plain file name in the index's directory
 * (no path, no {@code ..}, no link leading outside); every shard exists and is itself a valid
 * safetensors file; every mapped tensor is in its shard; no tensor is in two shards; no shard holds
 * a tensor the index does not map. Names are listed shard by shard (shards in name order), each in
 * file order. Closing closes every shard.
 */
final class ShardedTensorSource implements TensorSource {

  private final Map<String, SafetensorsFile> shardOf;
  private final List<SafetensorsFile> shards;
  private final List<String> names;

  private ShardedTensorSource(List<SafetensorsFile> shards, Map<String, SafetensorsFile> shardOf) {
    this.shards = List.copyOf(shards);
    this.shardOf = shardOf;
    List<String> n = new ArrayList<>(shardOf.size());
    for (SafetensorsFile s : shards) {
      n.addAll(s.names());
    }
    this.names = Collections.unmodifiableList(n);
  }

  static ShardedTensorSource open(Path index) throws IOException {
    Path dir = index.toAbsolutePath().getParent();
    Map<String, String> weightMap = readWeightMap(index);
    Map<String, Path> files = new TreeMap<>();
    for (Map.Entry<String, String> e : weightMap.entrySet()) {
      String shard = e.getValue();
      if (!files.containsKey(shard)) {
        checkPlainFileName(index, e.getKey(), shard);
        files.put(shard, Checkpoints.insideDir(dir, dir.resolve(shard)));
      }
    }
    Map<String, SafetensorsFile> opened = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, Path> f : files.entrySet()) {
        opened.put(f.getKey(), SafetensorsFile.open(f.getValue()));
      }
      Map<String, SafetensorsFile> shardOf = new HashMap<>();
      for (Map.Entry<String, SafetensorsFile> s : opened.entrySet()) {
        for (String name : s.getValue().names()) {
          SafetensorsFile previous = shardOf.put(name, s.getValue());
          if (previous != null) {
            throw new SafetensorsFormatException(
                index,
                "weight_map." + name,
                "each tensor in exactly one shard",
                "it in both " + previous.path().getFileName() + " and " + s.getKey());
          }
        }
      }
      for (Map.Entry<String, SafetensorsFile> s : opened.entrySet()) {
        for (String name : s.getValue().names()) {
          String mapped = weightMap.get(name);
          if (mapped == null) {
            throw new SafetensorsFormatException(
                index,
                "weight_map",
                "an entry for every tensor in the shards",
                "no entry for '" + name + "' which is in " + s.getKey());
          }
          if (!mapped.equals(s.getKey())) {
            throw new SafetensorsFormatException(
                index, "weight_map." + name, "shard " + mapped, "the tensor in " + s.getKey());
          }
        }
      }
      for (Map.Entry<String, String> e : weightMap.entrySet()) {
        if (!shardOf.containsKey(e.getKey())) {
          throw new SafetensorsFormatException(
              index,
              "weight_map." + e.getKey(),
              "the tensor in shard " + e.getValue(),
              "no such tensor in that shard");
        }
      }
      return new ShardedTensorSource(new ArrayList<>(opened.values()), shardOf);
    } catch (IOException | RuntimeException e) {
      for (SafetensorsFile s : opened.values()) {
        try {
          s.close();
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  private static Map<String, String> readWeightMap(Path index) throws IOException {
    JsonNode root;
    try (InputStream in = Files.newInputStream(index)) {
      root = JsonLimits.DOCUMENT.readTree(in);
    } catch (JsonProcessingException e) {
      throw new SafetensorsFormatException(
          index, "index", "well-formed JSON", e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new SafetensorsFormatException(
          index,
          "index",
          "a JSON object",
          root == null ? "an empty file" : root.getNodeType() + "");
    }
    JsonNode metadata = root.get("metadata");
    if (metadata != null && !metadata.isObject() && !metadata.isNull()) {
      throw new SafetensorsFormatException(
          index, "metadata", "an object", metadata.getNodeType() + "");
    }
    JsonNode map = root.get("weight_map");
    if (map == null || !map.isObject()) {
      throw new SafetensorsFormatException(
          index,
          "weight_map",
          "an object of tensor name to shard file name",
          map == null ? "no such key" : map.getNodeType() + "");
    }
    if (map.isEmpty()) {
      throw new SafetensorsFormatException(
          index, "weight_map", "at least one tensor", "an empty map");
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      if (!e.getValue().isTextual()) {
        throw new SafetensorsFormatException(
            index,
            "weight_map." + e.getKey(),
            "a shard file name",
            e.getValue().getNodeType() + "");
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
    return out;
  }

  private static void checkPlainFileName(Path index, String tensor, String shard)
      throws CheckpointFormatException {
    boolean plain =
        !shard.isEmpty()
            && !shard.equals(".")
            && !shard.equals("..")
            && shard.indexOf('/') < 0
            && shard.indexOf('\\') < 0
            && shard.indexOf(':') < 0
            && shard.chars().noneMatch(Character::isISOControl);
    if (!plain) {
      throw new SafetensorsFormatException(
          index,
          "weight_map." + tensor,
          "a plain file name in the index's directory (no path, no '..')",
          "\"" + SafetensorsHeader.abbreviate(shard) + "\"");
    }
    if (Checkpoints.isPickle(shard)) {
      throw Checkpoints.pickleRefused(List.of(Path.of(shard)));
    }
    if (!shard.endsWith(".safetensors")) {
      throw new SafetensorsFormatException(
          index, "weight_map." + tensor, "a *.safetensors file name", "\"" + shard + "\"");
    }
  }

  private SafetensorsFile shard(String name) {
    SafetensorsFile s = shardOf.get(name);
    if (s == null) {
      throw new IllegalArgumentException("no tensor named '" + name + "' in any shard");
    }
    return s;
  }

  @Override
  public List<String> names() {
    return names;
  }

  @Override
  public TensorInfo info(String name) {
    return shard(name).info(name);
  }

  @Override
  public boolean contains(String name) {
    return shardOf.containsKey(name);
  }

  @Override
  public ByteBuffer raw(String name) throws IOException {
    return shard(name).raw(name);
  }

  @Override
  public void readRaw(String name, long offset, ByteBuffer dst) throws IOException {
    shard(name).readRaw(name, offset, dst);
  }

  @Override
  public ByteBuffer readRawOnce(String name, long offset, int length, ByteBuffer scratch)
      throws IOException {
    return shard(name).readRawOnce(name, offset, length, scratch);
  }

  @Override
  public float[] readFloats(String name) throws IOException {
    return shard(name).readFloats(name);
  }

  @Override
  public ByteBuffer readFloatsDirect(String name) throws IOException {
    return shard(name).readFloatsDirect(name);
  }

  /** The shard file holding {@code name}. */
  Path fileOf(String name) {
    return shard(name).path();
  }

  /** The shards in name order. */
  List<SafetensorsFile> shards() {
    return shards;
  }

  @Override
  public Map<String, String> metadata() {
    return shards.get(0).metadata();
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (SafetensorsFile s : shards) {
      try {
        s.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "ShardedTensorSource[" + shards.size() + " shards, " + names.size() + " tensors]";
  }
}
