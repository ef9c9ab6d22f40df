package dev.compactor.core.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.compactor.core.engine.TorchThreads;
import dev.compactor.core.io.Checkpoints;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.io.TensorSource;
import dev.compactor.core.model.internal.CachedDecoder;
import dev.compactor.core.model.internal.Forward;
import dev.compactor.core.model.internal.Layout;
import dev.compactor.core.model.internal.TensorLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A causal LM with every weight resident in fp32 on a DJL device: evaluation, generation,
 * calibration (through {@link ActivationObserver}) and training (the arrays of {@link
 * #parameters()} are the model's own, so gradients and optimizer updates act on it directly).
 * Weights are created from checkpoints of any float type (BF16/F16 converted in Java) or randomly.
 */
public final class Transformer implements CausalLM {

  private static final Logger LOG = LoggerFactory.getLogger(Transformer.class);

  static {
    // Entry points call TorchThreads.configure() first; this covers library users and tests,
    // which reach the engine through a model before any NDArray of their own.
    try {
      TorchThreads.configure();
    } catch (IllegalArgumentException e) {
      LOG.warn("{}; libtorch keeps its own thread counts", e.getMessage());
    }
  }

  private final ModelConfig config;
  private final String base;
  private final NDManager manager;
  private final Map<String, NDArray> parameters;
  private final Forward forward;
  private final Forward.Weights weights;
  private final List<Map<String, NDArray>> layers;

  private Transformer(ModelConfig config, String base, NDManager manager, Map<String, NDArray> p) {
    this.config = config;
    this.base = base;
    this.manager = manager;
    this.parameters = Collections.unmodifiableMap(p);
    this.forward = new Forward(config, base, manager);
    List<Map<String, NDArray>> views = new java.util.ArrayList<>();
    for (int i = 0; i < config.numLayers(); i++) {
      views.add(layerView(i));
    }
    this.layers = List.copyOf(views);
    this.weights =
        new Forward.Weights() {
          @Override
          public NDArray global(String name) {
            return parameters.get(name);
          }

          @Override
          public Map<String, NDArray> layer(int i, NDManager scratch) {
            return layers.get(i);
          }
        };
  }

  /**
   * Loads a Hugging Face model directory ({@code config.json} plus {@code model.safetensors} or a
   * sharded index) into fp32 on {@code device}.
   */
  public static Transformer load(Path modelDir, Device device) throws IOException {
    ModelConfig config = ModelConfig.read(modelDir);
    try (TensorSource source = Checkpoints.open(modelDir)) {
      return load(config, source, device);
    }
  }

  /** Loads every weight of {@code source} named as {@code config} expects, converted to fp32. */
  public static Transformer load(ModelConfig config, TensorSource source, Device device)
      throws IOException {
    String base = gpt2Base(config, source);
    NDManager manager = NDManager.newBaseManager(device);
    try (TensorLoader loader = new TensorLoader()) {
      Map<String, NDArray> p = new LinkedHashMap<>();
      for (Layout.Spec s : Layout.globals(config, base)) {
        p.put(s.name(), loader.load(manager, source, s.name(), s.shape()));
      }
      for (int i = 0; i < config.numLayers(); i++) {
        String prefix = Layout.layerPrefix(config, base, i);
        for (Layout.Spec s : Layout.layer(config, i)) {
          String name = prefix + s.name();
          p.put(name, loader.load(manager, source, name, s.shape()));
        }
      }
      warnAboutUnused(source, p.keySet());
      return new Transformer(config, base, manager, p);
    } catch (IOException | RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** Tensors the forward never reads usually mean a variant this code does not model. */
  static void warnAboutUnused(TensorSource source, java.util.Set<String> used) {
    List<String> unused = new java.util.ArrayList<>();
    for (String name : source.names()) {
      boolean buffer = name.endsWith("attn.bias") || name.endsWith("attn.masked_bias");
      boolean tiedCopy = name.equals("lm_head.weight");
      if (!used.contains(name) && !buffer && !tiedCopy && !name.endsWith("rotary_emb.inv_freq")) {
        unused.add(name);
      }
    }
    if (!unused.isEmpty()) {
      LOG.warn(
          "{} checkpoint tensors are not used by the forward (first: {}); the model may be a variant"
              + " this code does not implement",
          unused.size(),
          unused.subList(0, Math.min(5, unused.size())));
    }
  }

  /**
   * A freshly initialised model like HF's {@code _init_weights}: linear and embedding weights N(0,
   * 0.02), biases 0, norm weights 1. The same seed gives the same weights.
   */
  public static Transformer randomInit(ModelConfig config, long seed, Device device) {
    String base = config.family() == ModelConfig.Family.GPT2 ? "transformer." : "";
    NDManager manager = NDManager.newBaseManager(device);
    Random random = new Random(seed);
    TensorLoader loader = new TensorLoader();
    Map<String, NDArray> p = new LinkedHashMap<>();
    for (Layout.Spec s : Layout.globals(config, base)) {
      p.put(s.name(), init(loader, manager, s, random));
    }
    for (int i = 0; i < config.numLayers(); i++) {
      for (Layout.Spec s : Layout.layer(config, i)) {
        p.put(Layout.layerPrefix(config, base, i) + s.name(), init(loader, manager, s, random));
      }
    }
    return new Transformer(config, base, manager, p);
  }

  private static NDArray init(TensorLoader loader, NDManager m, Layout.Spec s, Random random) {
    long n = 1;
    for (long d : s.shape()) {
      n *= d;
    }
    float[] v = new float[Math.toIntExact(n)];
    switch (s.init()) {
      case NORMAL -> {
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (random.nextGaussian() * 0.02);
        }
      }
      case ONES -> java.util.Arrays.fill(v, 1f);
      case ZEROS -> {}
    }
    return loader.create(m, v, s.shape());
  }

  static String gpt2Base(ModelConfig config, TensorSource source) {
    return config.family() == ModelConfig.Family.GPT2 && source.contains("transformer.wte.weight")
        ? "transformer."
        : "";
  }

  public ModelConfig config() {
    return config;
  }

  /** The device the weights live on. */
  public Device device() {
    return manager.getDevice();
  }

  /**
   * Every weight by its Hugging Face name, in checkpoint order. These are the model's live arrays:
   * changing one changes the model. A tied head has no entry of its own.
   */
  public Map<String, NDArray> parameters() {
    return parameters;
  }

  /** Full HF name prefix of layer {@code i}, e.g. {@code model.layers.3.}. */
  public String layerPrefix(int i) {
    return Layout.layerPrefix(config, base, i);
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
    return logits(manager, tokens, (ActivationObserver) null);
  }

  /** Logits like {@link #logits(NDManager, NDArray)}, showing each linear's input to observer. */
  public NDArray logits(NDManager manager, NDArray tokens, ActivationObserver observer) {
    try (NDManager call = manager.newSubManager()) {
      NDArray out = forward.run(call, weights, tokens, null, observer, true);
      out.attach(manager);
      return out;
    }
  }

  /**
   * Logits with every intermediate kept in {@code manager}: for training, where backward needs the
   * graph; close {@code manager} after the optimizer step.
   */
  public NDArray forward(NDManager manager, NDArray tokens) {
    return forward.run(manager, weights, tokens, null, null, false);
  }

  /**
   * Training logits like {@link #forward(NDManager, NDArray)}, computed with each decoder layer
   * tensor replaced by what {@code transform} makes of it (the stored arrays are not changed).
   */
  public NDArray forward(NDManager manager, NDArray tokens, WeightTransform transform) {
    return forward.run(manager, transformed(transform), tokens, null, null, false);
  }

  /**
   * Evaluation logits like {@link #logits(NDManager, NDArray)}, computed with each decoder layer
   * tensor replaced by what {@code transform} makes of it.
   */
  public NDArray logits(NDManager manager, NDArray tokens, WeightTransform transform) {
    try (NDManager call = manager.newSubManager()) {
      NDArray out = forward.run(call, transformed(transform), tokens, null, null, true);
      out.attach(manager);
      return out;
    }
  }

  @Override
  public NDArray logitsWithHidden(NDManager manager, NDArray tokens, List<NDArray> hidden) {
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

  /**
   * Training logits like {@link #forward(NDManager, NDArray, WeightTransform)} ({@code transform}
   * may be null: the stored weights), also adding each decoder layer's output to {@code hidden} in
   * layer order, every intermediate kept in {@code manager}.
   */
  public NDArray forward(
      NDManager manager, NDArray tokens, WeightTransform transform, List<NDArray> hidden) {
    Forward.Weights w = transform == null ? weights : transformed(transform);
    return forward.run(manager, w, tokens, null, null, false, hidden);
  }

  private Forward.Weights transformed(WeightTransform transform) {
    return new Forward.Weights() {
      @Override
      public NDArray global(String name) {
        return parameters.get(name);
      }

      @Override
      public Map<String, NDArray> layer(int i, NDManager scratch) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : layers.get(i).entrySet()) {
          out.put(e.getKey(), transform.apply(i, e.getKey(), e.getValue(), scratch));
        }
        return out;
      }
    };
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    return new CachedDecoder(
        manager,
        config.numLayers(),
        batch,
        (m, tokens, cache) -> forward.run(m, weights, tokens, cache, null, true));
  }

  /**
   * Incremental decoding like {@link #decoder(NDManager, int)}, every step computing with each
   * decoder layer tensor replaced by what {@code transform} makes of it.
   */
  public Decoder decoder(NDManager manager, int batch, WeightTransform transform) {
    Forward.Weights w = transformed(transform);
    return new CachedDecoder(
        manager,
        config.numLayers(),
        batch,
        (m, tokens, cache) -> forward.run(m, w, tokens, cache, null, true));
  }

  private Map<String, NDArray> layerView(int i) {
    String prefix = Layout.layerPrefix(config, base, i);
    Map<String, NDArray> view = new LinkedHashMap<>();
    List<Layout.Spec> specs = Layout.layer(config, i);
    for (Layout.Spec s : specs) {
      view.put(s.name(), parameters.get(prefix + s.name()));
    }
    return Collections.unmodifiableMap(view);
  }

  /**
   * Writes this model as a Hugging Face directory: {@code config.json} (with {@code torch_dtype}
   * set to match) and the weights stored as {@code storeAs} (F32, F16 or BF16) with {@code
   * metadata} in the safetensors header. A tied head is not written twice.
   */
  public void save(Path dir, DType storeAs, Map<String, String> metadata) throws IOException {
    String torchDtype =
        switch (storeAs) {
          case F32 -> "float32";
          case F16 -> "float16";
          case BF16 -> "bfloat16";
          default ->
              throw new IllegalArgumentException(
                  "save: expected F32, F16 or BF16 storage, found " + storeAs);
        };
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, metadata)) {
      for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
        NDArray p = e.getValue();
        writer.write(e.getKey(), storeAs, p.getShape().getShape(), p.toFloatArray());
      }
    }
    ModelConfig saved = config.with("{\"torch_dtype\":\"" + torchDtype + "\"}");
    Files.writeString(dir.resolve("config.json"), saved.toJson());
  }

  @Override
  public void close() {
    manager.close();
  }
}
