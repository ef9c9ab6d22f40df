package dev.compactor.core.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.io.CheckpointFormatException;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.internal.CachedDecoder;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.model.internal.TensorLoader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A causal LM evaluated layer by layer, for checkpoints larger than RAM. Only the token (and, for
 * GPT-2, position) embeddings, the final norm and the LM head stay resident; every forward pass
 * reads decoder layer {@code i} from the checkpoint, runs all batch tokens through it, frees it
 * (its own NDManager is closed) and moves on to layer {@code i+1}. Peak memory is therefore about
 * the resident part + one layer in fp32 + the activations of the batch.
 *
 * <p>Results equal those of {@link Transformer}. Calibration works the same way through {@link
 * ActivationObserver}. The KV-cache decoder works too, but re-reads every layer per step, so
 * generation costs a full pass over the checkpoint per token: use it for checks, not for speed. Not
 * thread-safe: one pass at a time.
 */
public final class StreamingTransformer implements CausalLM {

  private final ModelConfig config;
  private final TensorSource source;
  private final String base;
  private final NDManager manager;
  private final Map<String, NDArray> resident = new HashMap<>();
  private final TensorLoader loader = new TensorLoader();
  private final Map<String, ByteBuffer> slots = new HashMap<>();
  private final Forward forward;
  private final Forward.Weights weights;

  private StreamingTransformer(ModelConfig config, TensorSource source, Device device)
      throws IOException {
    this.config = config;
    this.source = source;
    this.base = Transformer.gpt2Base(config, source);
    this.manager = NDManager.newBaseManager(device);
    try {
      for (Layout.Spec s : Layout.globals(config, base)) {
        resident.put(s.name(), loader.load(manager, source, s.name(), s.shape()));
      }
      java.util.Set<String> used = new java.util.HashSet<>(resident.keySet());
      for (int i = 0; i < config.numLayers(); i++) {
        String prefix = Layout.layerPrefix(config, base, i);
        for (Layout.Spec s : Layout.layer(config, i)) {
          if (!source.contains(prefix + s.name())) {
            throw new CheckpointFormatException(
                "checkpoint: expected tensor \"" + prefix + s.name() + "\", absent");
          }
          used.add(prefix + s.name());
        }
      }
      Transformer.warnAboutUnused(source, used);
    } catch (IOException | RuntimeException e) {
      manager.close();
      throw e;
    }
    this.forward = new Forward(config, base, manager);
    this.weights =
        new Forward.Weights() {
          @Override
          public NDArray global(String name) {
            return resident.get(name);
          }

          @Override
          public Map<String, NDArray> layer(int i, NDManager scratch) throws IOException {
            return loadLayer(i, scratch);
          }
        };
  }

  /** Opens a model directory; weights are read from it on every pass, so keep it in place. */
  public static StreamingTransformer open(Path modelDir, Device device) throws IOException {
    ModelConfig config = ModelConfig.read(modelDir);
    TensorSource source = Checkpoints.open(modelDir);
    try {
      return new StreamingTransformer(config, source, device);
    } catch (IOException | RuntimeException e) {
      source.close();
      throw e;
    }
  }

  /** Streams from {@code source}, which this model now owns and closes. */
  public static StreamingTransformer open(ModelConfig config, TensorSource source, Device device)
      throws IOException {
    return new StreamingTransformer(config, source, device);
  }

  /** The device computations run on. */
  public Device device() {
    return manager.getDevice();
  }

  public ModelConfig config() {
    return config;
  }

  /**
   * Bytes of fp32 weights the largest decoder layer occupies while it is loaded (a sparse layer
   * with all its experts, where dense and sparse layers mix).
   */
  public long layerBytes() {
    long most = 0;
    for (int i = 0; i < config.numLayers(); i++) {
      long n = 0;
      for (Layout.Spec s : Layout.layer(config, i)) {
        n += numel(s.shape());
      }
      most = Math.max(most, n);
    }
    return 4 * most;
  }

  /**
   * A tensor name has one shape in every layer that has it (but for low-rank factors, whose rank
   * can differ: slots are keyed by name and shape), so one set of direct buffers holds whichever
   * layer is current; the arrays returned view it and die with {@code scratch}. Where dense and
   * sparse layers mix, the slots hold both kinds' tensors, one copy each, never more than one
   * layer's experts.
   */
  private Map<String, NDArray> loadLayer(int i, NDManager scratch) throws IOException {
    String prefix = Layout.layerPrefix(config, base, i);
    Map<String, NDArray> layer = new LinkedHashMap<>();
    for (Layout.Spec s : Layout.layer(config, i)) {
      // keyed by shape too: a factorized linear's rank may differ between layers
      ByteBuffer slot =
          slots.computeIfAbsent(
              s.name() + java.util.Arrays.toString(s.shape()),
              k ->
                  ByteBuffer.allocateDirect(Math.toIntExact(4 * numel(s.shape())))
                      .order(ByteOrder.nativeOrder()));
      layer.put(s.name(), loader.loadInto(scratch, source, prefix + s.name(), slot, s.shape()));
    }
    return layer;
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  @Override
  public int vocabSize() {
    return config.vocabSize();
  }

  @Override
  public int maxSequenceLength() {
    return config.maxPositions();
  }

  @Override
  public NDArray logits(NDManager manager, NDArray tokens) {
    return logits(manager, tokens, null);
  }

  /** One streamed pass, showing each linear's input to {@code observer} (may be null). */
  public synchronized NDArray logits(
      NDManager manager, NDArray tokens, ActivationObserver observer) {
    try (NDManager call = manager.newSubManager()) {
      NDArray out = forward.run(call, weights, tokens, null, observer, true);
      out.attach(manager);
      return out;
    }
  }

  @Override
  public synchronized NDArray logitsWithHidden(
      NDManager manager, NDArray tokens, List<NDArray> hidden) {
    try (NDManager call = manager.newSubManager()) {
      List<NDArray> layers = new ArrayList<>();
      NDArray out = forward.run(call, weights, tokens, null, null, true, layers);
      out.attach(manager);
      for (NDArray h : layers) {
        h.attach(manager);
      }
      hidden.addAll(layers);
      return out;
    }
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    return new CachedDecoder(
        manager,
        config.numLayers(),
        batch,
        (m, tokens, cache) -> {
          synchronized (this) {
            return forward.run(m, weights, tokens, cache, null, true);
          }
        });
  }

  @Override
  public void close() {
    manager.close();
    try {
      loader.close();
      source.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
