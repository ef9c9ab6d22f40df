package dev.compactor.bench;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.engine.TorchThreads;
import dev.compactor.core.io.DType;
import dev.compactor.core.io.SafetensorsWriter;
import dev.compactor.core.model.ModelConfig;
import dev.compactor.core.model.StreamingTransformer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Shows that {@link StreamingTransformer} evaluates a checkpoint without holding it in memory.
 * Writes a synthetic Llama-shaped BF16 checkpoint (random weights, streamed tensor by tensor with
 * {@link SafetensorsWriter}), then runs one forward in streaming mode in a FRESH JVM, so the peak
 * RSS it reports (VmHWM from /proc/self/status) belongs to the forward alone, and prints it next to
 * the checkpoint size and the size of one layer.
 *
 * <p>Usage: {@code LayerStreamingBench [--gb 3] [--hidden 2048] [--intermediate 5632] [--heads 16]
 * [--kv-heads 16] [--vocab 32000] [--tokens 128] [--dir /tmp/compactor-stream-bench] [--keep]}. The
 * number of layers is chosen so the checkpoint is about {@code --gb} GB. The checkpoint is deleted
 * at the end unless {@code --keep}.
 */
public final class LayerStreamingBench {

  private LayerStreamingBench() {}

  public static void main(String[] args) throws Exception {
    TorchThreads.configure();
    Args a = new Args(args);
    if (a.flag("--measure")) {
      measure(Paths.get(a.get("--dir", null)), a.integer("--tokens", 128));
      return;
    }
    Path dir = Paths.get(a.get("--dir", "/tmp/compactor-stream-bench"));
    int hidden = a.integer("--hidden", 2048);
    int inter = a.integer("--intermediate", 5632);
    int heads = a.integer("--heads", 16);
    int kvHeads = a.integer("--kv-heads", 16);
    int vocab = a.integer("--vocab", 32000);
    double gb = Double.parseDouble(a.get("--gb", "3"));
    long perLayer =
        ModelConfig.llama(vocab, hidden, inter, 2, heads, kvHeads, 4096).parameterCount()
            - ModelConfig.llama(vocab, hidden, inter, 1, heads, kvHeads, 4096).parameterCount();
    long rest =
        ModelConfig.llama(vocab, hidden, inter, 1, heads, kvHeads, 4096).parameterCount()
            - perLayer;
    int layers = (int) Math.max(1, Math.round((gb * 1e9 / 2 - rest) / perLayer));
    ModelConfig config = ModelConfig.llama(vocab, hidden, inter, layers, heads, kvHeads, 4096);
    try {
      long t0 = System.nanoTime();
      long bytes = writeCheckpoint(dir, config);
      System.out.printf(
          "checkpoint: %s, %d layers, %.2f GB BF16 on disk, written in %.1f s%n",
          config, layers, bytes / 1e9, (System.nanoTime() - t0) / 1e9);
      List<String> cmd = new ArrayList<>();
      cmd.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
      cmd.add("-Xmx256m");
      cmd.add("-Dai.djl.offline=true");
      cmd.add("-cp");
      cmd.add(System.getProperty("java.class.path"));
      cmd.add(LayerStreamingBench.class.getName());
      cmd.add("--measure");
      cmd.add("--dir");
      cmd.add(dir.toString());
      cmd.add("--tokens");
      cmd.add(Integer.toString(a.integer("--tokens", 128)));
      int rc = new ProcessBuilder(cmd).inheritIO().start().waitFor();
      if (rc != 0) {
        throw new IllegalStateException("measuring JVM exited with " + rc);
      }
    } finally {
      if (!a.flag("--keep")) {
        deleteTree(dir);
      }
    }
  }

  /** Runs in the fresh JVM: one streamed forward over {@code tokens} positions, then VmHWM. */
  private static void measure(Path dir, int tokens) throws Exception {
    long before = vm("VmHWM");
    try (StreamingTransformer model = StreamingTransformer.open(dir, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      long afterOpen = vm("VmHWM");
      ModelConfig c = model.config();
      int[] ids = new int[tokens];
      for (int i = 0; i < tokens; i++) {
        ids[i] = (i * 7919) % c.vocabSize();
      }
      long t0 = System.nanoTime();
      NDArray logits = model.logits(m, m.create(ids, new Shape(1, tokens)));
      float checksum = logits.abs().mean().getFloat();
      double seconds = (System.nanoTime() - t0) / 1e9;
      long checkpoint = 0;
      try (Stream<Path> files = Files.list(dir)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          checkpoint += Files.size(f);
        }
      }
      long residentFp32 = 4L * c.hiddenSize() * (c.vocabSize() * 2L + 1);
      System.out.printf(
          "streamed forward: %d tokens through %d layers in %.1f s (mean |logit| %.4f)%n",
          tokens, c.numLayers(), seconds, checksum);
      System.out.printf("checkpoint on disk (BF16):        %8.1f MB%n", checkpoint / 1e6);
      System.out.printf(
          "whole model in fp32 would be:     %8.1f MB%n", 4.0 * c.parameterCount() / 1e6);
      System.out.printf(
          "one decoder layer, BF16 on disk:  %8.1f MB%n", model.layerBytes() / 2 / 1e6);
      System.out.printf("one decoder layer, fp32 loaded:   %8.1f MB%n", model.layerBytes() / 1e6);
      System.out.printf("resident embed+norm+head (fp32):  %8.1f MB%n", residentFp32 / 1e6);
      System.out.printf("peak RSS before opening (JVM):    %8.1f MB%n", before / 1e3);
      System.out.printf("peak RSS after opening:           %8.1f MB%n", afterOpen / 1e3);
      System.out.printf("peak RSS (VmHWM) after forward:   %8.1f MB%n", vm("VmHWM") / 1e3);
    }
  }

  /** Streams random BF16 weights (uniform, std 0.02) to disk one tensor at a time. */
  private static long writeCheckpoint(Path dir, ModelConfig config) throws IOException {
    if (Files.exists(dir)) {
      deleteTree(dir);
    }
    long state = 0x9E3779B97F4A7C15L;
    float scale = (float) (0.02 * Math.sqrt(3) * 2 / (1L << 24));
    try (SafetensorsWriter w =
        new SafetensorsWriter(dir, Map.of("producer", "LayerStreamingBench"))) {
      for (String[] t : tensorList(config)) {
        long[] shape = parseShape(t[1]);
        long n = 1;
        for (long d : shape) {
          n *= d;
        }
        float[] v = new float[Math.toIntExact(n)];
        boolean ones = t[0].endsWith("norm.weight");
        for (int i = 0; i < v.length; i++) {
          state ^= state << 13;
          state ^= state >>> 7;
          state ^= state << 17;
          v[i] = ones ? 1f : ((state >>> 40) - (1L << 23)) * scale;
        }
        w.write(t[0], DType.BF16, shape, v);
      }
    }
    Files.writeString(dir.resolve("config.json"), config.toJson());
    long total = 0;
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        total += Files.size(f);
      }
    }
    return total;
  }

  /** {name, "d0xd1"} in HF order for an untied Llama without biases. */
  private static List<String[]> tensorList(ModelConfig c) {
    long h = c.hiddenSize();
    long q = (long) c.numHeads() * c.headDim();
    long kv = (long) c.numKvHeads() * c.headDim();
    long i = c.intermediateSize();
    List<String[]> out = new ArrayList<>();
    out.add(new String[] {"model.embed_tokens.weight", c.vocabSize() + "x" + h});
    for (int l = 0; l < c.numLayers(); l++) {
      String p = "model.layers." + l + ".";
      out.add(new String[] {p + "input_layernorm.weight", "" + h});
      out.add(new String[] {p + "self_attn.q_proj.weight", q + "x" + h});
      out.add(new String[] {p + "self_attn.k_proj.weight", kv + "x" + h});
      out.add(new String[] {p + "self_attn.v_proj.weight", kv + "x" + h});
      out.add(new String[] {p + "self_attn.o_proj.weight", h + "x" + q});
      out.add(new String[] {p + "post_attention_layernorm.weight", "" + h});
      out.add(new String[] {p + "mlp.gate_proj.weight", i + "x" + h});
      out.add(new String[] {p + "mlp.up_proj.weight", i + "x" + h});
      out.add(new String[] {p + "mlp.down_proj.weight", h + "x" + i});
    }
    out.add(new String[] {"model.norm.weight", "" + h});
    out.add(new String[] {"lm_head.weight", c.vocabSize() + "x" + h});
    return out;
  }

  private static long[] parseShape(String s) {
    String[] parts = s.split("x");
    long[] shape = new long[parts.length];
    for (int i = 0; i < parts.length; i++) {
      shape[i] = Long.parseLong(parts[i]);
    }
    return shape;
  }

  /** A /proc/self/status field in kB. */
  private static long vm(String field) throws IOException {
    for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
      if (line.startsWith(field + ":")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    throw new IOException(field + " not in /proc/self/status");
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted((x, y) -> y.getNameCount() - x.getNameCount()).toList()) {
        Files.delete(p);
      }
    }
  }

  private record Args(String[] args) {
    String get(String key, String dflt) {
      for (int i = 0; i < args.length - 1; i++) {
        if (args[i].equals(key)) {
          return args[i + 1];
        }
      }
      if (dflt == null) {
        throw new IllegalArgumentException("missing " + key);
      }
      return dflt;
    }

    int integer(String key, int dflt) {
      return Integer.parseInt(get(key, Integer.toString(dflt)));
    }

    boolean flag(String key) {
      for (String s : args) {
        if (s.equals(key)) {
          return true;
        }
      }
      return false;
    }
  }
}
