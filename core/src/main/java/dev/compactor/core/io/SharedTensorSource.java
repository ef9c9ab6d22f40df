package dev.compactor.core.io;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The dense view of a checkpoint with cross-layer shared tensors: every tensor that config.json's
 * {@value #KEY} names is served as a copy of the tensor it refers to, so resident, streamed and
 * KV-cache forwards and every later stage read the model like any other. {@link Checkpoints#open}
 * wraps a directory in it when its config.json has the field.
 *
 * <p>Layout (written by {@code dev.compactor.core.share.CrossLayerSharing}):
 *
 * <pre>
 *   config.json   "compactor_shared": { "&lt;reference&gt;": "&lt;owner&gt;", ... }
 *   safetensors   the owner tensors, each once; no tensor named by a reference
 * </pre>
 *
 * A reference and its owner are full tensor names of the same kind in different decoder layers
 * ({@code model.layers.3.mlp.up_proj.weight} to {@code model.layers.2.mlp.up_proj.weight}, or the
 * shared basis {@code ...X.u.weight} of a low-rank linear): the part after {@code model.layers.N.}
 * must be equal. Refused when the view is opened, with what was expected and found: an owner that
 * is not stored, an owner that is itself a reference (chains and cycles), a reference to itself, a
 * pair of different kinds, a field that is not an object of strings. A reference whose name is also
 * stored is ignored in favour of the stored tensor (what any other loader reads): a later stage
 * that rewrote the model dense may have copied config.json verbatim.
 */
public final class SharedTensorSource implements TensorSource {

  /** The config.json field mapping each shared tensor's name to its owner's. */
  public static final String KEY = "compactor_shared";

  /** What a stage that needs the stored (not the dense) form says to a shared checkpoint. */
  public static final String REFUSAL =
      "not supported yet: cross-layer shared tensors ("
          + KEY
          + " in config.json); unshare with `compactor share --merge` first";

  private static final Logger LOG = LoggerFactory.getLogger(SharedTensorSource.class);
  private static final String LAYERS = "model.layers.";

  private final TensorSource stored;
  private final Map<String, String> references;
  private final List<String> names;

  /**
   * {@code stored} with {@code references} (reference name to owner name) resolved; checks them
   * all, see the class comment.
   */
  public SharedTensorSource(TensorSource stored, Map<String, String> references)
      throws CheckpointFormatException {
    this.stored = stored;
    Map<String, String> live = new LinkedHashMap<>();
    int shadowed = 0;
    for (Map.Entry<String, String> e : references.entrySet()) {
      String ref = e.getKey();
      String owner = e.getValue();
      if (ref.equals(owner)) {
        throw new CheckpointFormatException(
            KEY + ": \"" + ref + "\" refers to itself; expected another layer's tensor");
      }
      if (references.containsKey(owner)) {
        throw new CheckpointFormatException(
            KEY
                + ": \""
                + ref
                + "\" refers to \""
                + owner
                + "\", which is itself a reference (to \""
                + references.get(owner)
                + "\"); expected a stored tensor (no chains or cycles)");
      }
      String refKind = kind(ref);
      if (refKind == null || !refKind.equals(kind(owner))) {
        throw new CheckpointFormatException(
            KEY
                + ": \""
                + ref
                + "\" refers to \""
                + owner
                + "\"; expected the same tensor of another decoder layer ("
                + LAYERS
                + "N.<same name>)");
      }
      if (!stored.contains(owner)) {
        throw new CheckpointFormatException(
            KEY + ": \"" + ref + "\" refers to \"" + owner + "\", which is not stored");
      }
      if (stored.contains(ref)) {
        shadowed++;
        continue;
      }
      live.put(ref, owner);
    }
    if (shadowed > 0) {
      LOG.warn(
          "{}: {} of {} references name tensors that are also stored; the stored ones are used",
          KEY,
          shadowed,
          references.size());
    }
    this.references = Map.copyOf(live);
    List<String> all = new ArrayList<>(stored.names());
    all.addAll(live.keySet());
    this.names = List.copyOf(all);
  }

  /** The part of a decoder-layer tensor name after {@code model.layers.N.}; null if none. */
  private static String kind(String name) {
    if (!name.startsWith(LAYERS)) {
      return null;
    }
    int dot = name.indexOf('.', LAYERS.length());
    if (dot <= LAYERS.length()) {
      return null;
    }
    for (int i = LAYERS.length(); i < dot; i++) {
      if (!Character.isDigit(name.charAt(i))) {
        return null;
      }
    }
    return name.substring(dot + 1);
  }

  /** The references of {@code dir}'s config.json (reference to owner); empty if it has none. */
  public static Map<String, String> references(Path dir) throws IOException {
    Path config = dir.resolve(ModelDirectory.CONFIG);
    if (!Files.exists(config, LinkOption.NOFOLLOW_LINKS)) {
      return Map.of();
    }
    return references(ModelDirectory.readJsonObject(config), config.toString());
  }

  /** The {@value #KEY} map of a parsed config.json; empty if absent. */
  public static Map<String, String> references(JsonNode config, String where)
      throws CheckpointFormatException {
    JsonNode node = config.get(KEY);
    if (node == null || node.isNull()) {
      return Map.of();
    }
    if (!node.isObject()) {
      throw new CheckpointFormatException(
          where + ": " + KEY + ": expected an object of tensor names, found " + node);
    }
    Map<String, String> out = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (!e.getValue().isTextual()) {
        throw new CheckpointFormatException(
            where
                + ": "
                + KEY
                + "."
                + e.getKey()
                + ": expected the owner tensor's name, found "
                + e.getValue());
      }
      out.put(e.getKey(), e.getValue().asText());
    }
    return out;
  }

  /** {@code source} as a dense view when {@code dir}'s config.json has {@value #KEY}. */
  static TensorSource wrapIfShared(Path dir, TensorSource source) throws IOException {
    Map<String, String> refs = references(dir);
    return refs.isEmpty() ? source : new SharedTensorSource(source, refs);
  }

  /** The tensors as stored (each shared tensor once). */
  public TensorSource stored() {
    return stored;
  }

  /** The references resolved by this view (reference to owner), stored names excluded. */
  public Map<String, String> references() {
    return references;
  }

  @Override
  public List<String> names() {
    return names;
  }

  @Override
  public TensorInfo info(String name) {
    String owner = references.get(name);
    if (owner == null) {
      return stored.info(name);
    }
    TensorInfo t = stored.info(owner);
    return new TensorInfo(name, t.dtype(), t.shape(), t.begin(), t.end());
  }

  @Override
  public boolean contains(String name) {
    return references.containsKey(name) || stored.contains(name);
  }

  private String resolve(String name) {
    return references.getOrDefault(name, name);
  }

  @Override
  public ByteBuffer raw(String name) throws IOException {
    return stored.raw(resolve(name));
  }

  @Override
  public void readRaw(String name, long offset, ByteBuffer dst) throws IOException {
    stored.readRaw(resolve(name), offset, dst);
  }

  @Override
  public ByteBuffer readRawOnce(String name, long offset, int length, ByteBuffer scratch)
      throws IOException {
    return stored.readRawOnce(resolve(name), offset, length, scratch);
  }

  @Override
  public float[] readFloats(String name) throws IOException {
    return stored.readFloats(resolve(name));
  }

  @Override
  public ByteBuffer readFloatsDirect(String name) throws IOException {
    return stored.readFloatsDirect(resolve(name));
  }

  @Override
  public Map<String, String> metadata() {
    return stored.metadata();
  }

  @Override
  public void close() throws IOException {
    stored.close();
  }

  @Override
  public String toString() {
    return stored + " (" + references.size() + " shared tensors resolved)";
  }
}
