package dev.compactor.core.infer;

import dev.compactor.core.gguf.GgmlType;
import dev.compactor.core.gguf.GgufFormatException;
import dev.compactor.core.gguf.GgufReader;
import dev.compactor.core.gguf.GgufTensorInfo;
import dev.compactor.core.gguf.GgufValue;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * A Llama-family decoder that runs a GGUF file's weights as stored (F32, F16, Q8_0, Q4_0) with the
 * kernels of {@link QuantKernels}, on the JVM, one token at a time: RMSNorm, RoPE (ggml's
 * interleaved pairs, the layout {@code LlamaGgufExporter} and convert_hf_to_gguf.py write for the
 * {@code llama} arch; linear scaling and llama3's {@code rope_freqs.weight} included),
 * grouped-query attention over an fp32 KV cache, SiLU-gated MLP, tied or separate output head.
 *
 * <p>Reads the metadata names {@code LlamaGgufExporter} writes (the same as llama.cpp's files).
 * Refused with "not supported yet": other architectures, experts, YaRN scaling, partial rotary
 * dimensions, tensors this graph does not use, and other ggml types (Q4_K, Q6_K, ...).
 *
 * <p>A prompt is fed token by token (no batched prefill in this version), so prefill costs as much
 * per token as decoding.
 */
public final class GgufLlama implements AutoCloseable {

  /** The hyper-parameters read from the file. */
  public record Config(
      int hidden,
      int layers,
      int heads,
      int kvHeads,
      int headDim,
      int ffn,
      int vocab,
      int context,
      float ropeTheta,
      float rmsEps,
      float ropeLinearFactor) {}

  private record Layer(
      float[] attnNorm,
      QuantMatrix q,
      QuantMatrix k,
      QuantMatrix v,
      QuantMatrix o,
      float[] ffnNorm,
      QuantMatrix gate,
      QuantMatrix up,
      QuantMatrix down) {}

  /** Attention work (positions x query width) below which heads are not split over threads. */
  private static final long ATTENTION_SPLIT = 1 << 16;

  private final Config config;
  private final QuantMatrix embedding;
  private final Layer[] layers;
  private final float[] outputNorm;
  private final QuantMatrix output;
  private final float[] ropeFreqFactors;
  private final InferThreads threads;

  private GgufLlama(
      Config config,
      QuantMatrix embedding,
      Layer[] layers,
      float[] outputNorm,
      QuantMatrix output,
      float[] ropeFreqFactors,
      InferThreads threads) {
    this.config = config;
    this.embedding = embedding;
    this.layers = layers;
    this.outputNorm = outputNorm;
    this.output = output;
    this.ropeFreqFactors = ropeFreqFactors;
    this.threads = threads;
  }

  /** Loads {@code gguf} with {@link InferThreads#fromEnvironment()} threads. */
  public static GgufLlama load(Path gguf) throws IOException {
    return load(gguf, InferThreads.fromEnvironment());
  }

  /** Loads {@code gguf}; matrix-vector products use {@code threadCount} threads. */
  public static GgufLlama load(Path gguf, int threadCount) throws IOException {
    try (GgufReader r = GgufReader.open(gguf)) {
      String arch = r.require("general.architecture").asString();
      if (!arch.equals("llama")) {
        throw new UnsupportedOperationException(
            "not supported yet: architecture " + arch + " (native inference runs llama)");
      }
      String a = arch + ".";
      if (r.metadata().containsKey(a + "expert_count")
          && r.require(a + "expert_count").asLong() > 0) {
        throw new UnsupportedOperationException("not supported yet: experts (" + gguf + ")");
      }
      int hidden = u32(r, a + "embedding_length");
      int nLayers = u32(r, a + "block_count");
      int heads = u32(r, a + "attention.head_count");
      int kvHeads = u32(r, a + "attention.head_count_kv");
      int headDim =
          r.metadata().containsKey(a + "attention.key_length")
              ? u32(r, a + "attention.key_length")
              : hidden / heads;
      if (r.metadata().containsKey(a + "attention.value_length")
          && u32(r, a + "attention.value_length") != headDim) {
        throw new UnsupportedOperationException(
            "not supported: attention.value_length != key_length");
      }
      if (heads % kvHeads != 0) {
        throw new GgufFormatException(
            a + "attention.head_count " + heads + " is not a multiple of head_count_kv " + kvHeads);
      }
      if (r.metadata().containsKey(a + "rope.dimension_count")
          && u32(r, a + "rope.dimension_count") != headDim) {
        throw new UnsupportedOperationException(
            "not supported yet: partial rotary embedding: rope.dimension_count="
                + u32(r, a + "rope.dimension_count")
                + " with head dimension "
                + headDim);
      }
      float linear = 1f;
      GgufValue scaling = r.metadata().get(a + "rope.scaling.type");
      if (scaling != null) {
        switch (scaling.asString()) {
          case "none" -> {}
          case "linear" -> linear = (float) r.require(a + "rope.scaling.factor").asDouble();
          default ->
              throw new UnsupportedOperationException(
                  "not supported yet: rope.scaling.type=" + scaling.asString());
        }
      }
      int ffn = u32(r, a + "feed_forward_length");
      GgufTensorInfo embInfo = r.tensor("token_embd.weight");
      int vocab = Math.toIntExact(embInfo.shape()[0]);
      Config c =
          new Config(
              hidden,
              nLayers,
              heads,
              kvHeads,
              headDim,
              ffn,
              vocab,
              u32(r, a + "context_length"),
              (float) r.require(a + "rope.freq_base").asDouble(),
              (float) r.require(a + "attention.layer_norm_rms_epsilon").asDouble(),
              linear);
      Set<String> used = new HashSet<>();
      QuantMatrix emb = matrix(r, "token_embd.weight", vocab, hidden, used);
      Layer[] ls = new Layer[nLayers];
      int qRows = heads * headDim;
      int kvRows = kvHeads * headDim;
      for (int l = 0; l < nLayers; l++) {
        String b = "blk." + l + ".";
        ls[l] =
            new Layer(
                vector(r, b + "attn_norm.weight", hidden, used),
                matrix(r, b + "attn_q.weight", qRows, hidden, used),
                matrix(r, b + "attn_k.weight", kvRows, hidden, used),
                matrix(r, b + "attn_v.weight", kvRows, hidden, used),
                matrix(r, b + "attn_output.weight", hidden, qRows, used),
                vector(r, b + "ffn_norm.weight", hidden, used),
                matrix(r, b + "ffn_gate.weight", ffn, hidden, used),
                matrix(r, b + "ffn_up.weight", ffn, hidden, used),
                matrix(r, b + "ffn_down.weight", hidden, ffn, used));
      }
      float[] norm = vector(r, "output_norm.weight", hidden, used);
      boolean hasHead = r.tensors().stream().anyMatch(t -> t.name().equals("output.weight"));
      QuantMatrix head = hasHead ? matrix(r, "output.weight", vocab, hidden, used) : emb;
      float[] freqs = null;
      if (r.tensors().stream().anyMatch(t -> t.name().equals("rope_freqs.weight"))) {
        freqs = vector(r, "rope_freqs.weight", headDim / 2, used);
      }
      for (GgufTensorInfo t : r.tensors()) {
        if (!used.contains(t.name())) {
          throw new UnsupportedOperationException(
              "not supported yet: tensor " + t.name() + " in a llama GGUF file");
        }
      }
      return new GgufLlama(c, emb, ls, norm, head, freqs, new InferThreads(threadCount));
    }
  }

  private static int u32(GgufReader r, String key) throws GgufFormatException {
    long v = r.require(key).asLong();
    if (v <= 0 || v > Integer.MAX_VALUE) {
      throw new GgufFormatException(key + ": expected a positive int, found " + v);
    }
    return (int) v;
  }

  private static QuantMatrix matrix(GgufReader r, String name, int rows, int cols, Set<String> used)
      throws IOException {
    GgufTensorInfo t = r.tensor(name);
    long[] s = t.shape();
    if (s.length != 2 || s[0] != rows || s[1] != cols) {
      throw new GgufFormatException(
          name
              + ": expected shape ["
              + rows
              + ", "
              + cols
              + "], found "
              + java.util.Arrays.toString(s));
    }
    used.add(name);
    // refuse the type before reading its bytes
    QuantMatrix.of(name, t.type(), 0, cols, new byte[0]);
    return QuantMatrix.of(name, t.type(), rows, cols, r.readTensorBytes(name));
  }

  private static float[] vector(GgufReader r, String name, int n, Set<String> used)
      throws IOException {
    GgufTensorInfo t = r.tensor(name);
    if (t.numel() != n || (t.type() != GgmlType.F32 && t.type() != GgmlType.F16)) {
      throw new GgufFormatException(
          name + ": expected " + n + " F32/F16 values, found " + t.numel() + " " + t.type());
    }
    used.add(name);
    return r.readTensorFloats(name);
  }

  public Config config() {
    return config;
  }

  public int threads() {
    return threads.threads();
  }

  /**
   * Bytes of stored weights one decode step reads: every layer matrix and the output head (the
   * embedding contributes one row, which is left out).
   */
  public long weightBytesPerToken() {
    long n = output.storedBytes();
    for (Layer l : layers) {
      n += l.q.storedBytes() + l.k.storedBytes() + l.v.storedBytes() + l.o.storedBytes();
      n += l.gate.storedBytes() + l.up.storedBytes() + l.down.storedBytes();
    }
    return n;
  }

  /** The ggml type of the output head (the largest single matrix). */
  public GgmlType outputType() {
    return output.type();
  }

  /** A fresh sequence with room for {@code capacity} positions in its KV cache. */
  public Session session(int capacity) {
    if (capacity < 1 || capacity > config.context) {
      throw new IllegalArgumentException(
          "capacity must be in 1.." + config.context + ", found " + capacity);
    }
    return new Session(capacity);
  }

  /** Greedy decoding: feeds {@code prompt}, then appends {@code n} argmax tokens. */
  public int[] generateGreedy(int[] prompt, int n) {
    if (prompt.length == 0) {
      throw new IllegalArgumentException("prompt must not be empty");
    }
    Session s = session(Math.min(config.context, prompt.length + n));
    float[] logits = null;
    for (int t : prompt) {
      logits = s.next(t);
    }
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = argmax(logits);
      if (i + 1 < n) {
        logits = s.next(out[i]);
      }
    }
    return out;
  }

  public static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }

  @Override
  public void close() {
    threads.close();
  }

  /** One sequence's decode state: the fp32 KV cache and the scratch vectors. */
  public final class Session {
    private final int capacity;
    private final float[][] keys;
    private final float[][] values;
    private final float[] x;
    private final float[] xb;
    private final float[] q;
    private final float[] k;
    private final float[] v;
    private final float[] att;
    private final float[] proj;
    private final float[] gate;
    private final float[] up;
    private final float[][] scores;
    private final float[] logits;
    private final float[] cos;
    private final float[] sin;
    private int pos;

    private Session(int capacity) {
      Config c = config;
      this.capacity = capacity;
      int kvDim = c.kvHeads * c.headDim;
      int cacheLen = Math.toIntExact((long) capacity * kvDim);
      keys = new float[c.layers][cacheLen];
      values = new float[c.layers][cacheLen];
      x = new float[c.hidden];
      xb = new float[c.hidden];
      q = new float[c.heads * c.headDim];
      k = new float[kvDim];
      v = new float[kvDim];
      att = new float[c.heads * c.headDim];
      proj = new float[c.hidden];
      gate = new float[c.ffn];
      up = new float[c.ffn];
      scores = new float[c.heads][capacity];
      logits = new float[c.vocab];
      cos = new float[c.headDim / 2];
      sin = new float[c.headDim / 2];
    }

    public int position() {
      return pos;
    }

    /**
     * Feeds {@code token} at the next position and returns the next-token logits (the array is
     * reused by the next call).
     */
    public float[] next(int token) {
      Config c = config;
      if (token < 0 || token >= c.vocab) {
        throw new IllegalArgumentException("token " + token + " outside 0.." + (c.vocab - 1));
      }
      if (pos >= capacity) {
        throw new IllegalStateException("KV cache full: " + capacity + " positions");
      }
      embedding.row(token, x);
      ropeTables(pos);
      int kvDim = c.kvHeads * c.headDim;
      int qRows = q.length;
      for (int li = 0; li < layers.length; li++) {
        Layer l = layers[li];
        rmsNorm(x, l.attnNorm, xb);
        threads.forRange(
            qRows + 2 * kvDim,
            (from, to) -> {
              span(l.q, xb, q, from, to, 0);
              span(l.k, xb, k, from, to, qRows);
              span(l.v, xb, v, from, to, qRows + kvDim);
            });
        rope(q, c.heads);
        rope(k, c.kvHeads);
        System.arraycopy(k, 0, keys[li], pos * kvDim, kvDim);
        System.arraycopy(v, 0, values[li], pos * kvDim, kvDim);
        int layer = li;
        if ((long) (pos + 1) * qRows < ATTENTION_SPLIT) {
          attend(layer, 0, c.heads); // a hand-off would cost more than the work
        } else {
          threads.forRange(c.heads, (from, to) -> attend(layer, from, to));
        }
        threads.forRange(c.hidden, (from, to) -> l.o.dotRows(att, proj, from, to));
        add(x, proj);
        rmsNorm(x, l.ffnNorm, xb);
        // gate and up rows i..j go to the same thread, which then applies SiLU(gate) * up to them
        threads.forRange(
            c.ffn,
            (from, to) -> {
              l.gate.dotRows(xb, gate, from, to);
              l.up.dotRows(xb, up, from, to);
              for (int i = from; i < to; i++) {
                float g = gate[i];
                gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
              }
            });
        threads.forRange(c.hidden, (from, to) -> l.down.dotRows(gate, proj, from, to));
        add(x, proj);
      }
      rmsNorm(x, outputNorm, xb);
      threads.forRange(c.vocab, (from, to) -> output.dotRows(xb, logits, from, to));
      pos++;
      return logits;
    }

    /**
     * The part of {@code [from, to)} that falls in {@code m}'s rows, which start at {@code base}.
     */
    private void span(QuantMatrix m, float[] in, float[] out, int from, int to, int base) {
      int a = Math.max(from - base, 0);
      int b = Math.min(to - base, m.rows());
      if (a < b) {
        m.dotRows(in, out, a, b);
      }
    }

    private void attend(int layer, int fromHead, int toHead) {
      Config c = config;
      int hd = c.headDim;
      int kvDim = c.kvHeads * hd;
      int group = c.heads / c.kvHeads;
      float scale = (float) (1.0 / Math.sqrt(hd));
      float[] kc = keys[layer];
      float[] vc = values[layer];
      for (int h = fromHead; h < toHead; h++) {
        float[] s = scores[h];
        int qo = h * hd;
        int ko = (h / group) * hd;
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t <= pos; t++) {
          float dot = 0;
          int base = t * kvDim + ko;
          for (int i = 0; i < hd; i++) {
            dot += q[qo + i] * kc[base + i];
          }
          s[t] = dot * scale;
          max = Math.max(max, s[t]);
        }
        float sum = 0;
        for (int t = 0; t <= pos; t++) {
          s[t] = (float) Math.exp(s[t] - max);
          sum += s[t];
        }
        float inv = 1f / sum;
        java.util.Arrays.fill(att, qo, qo + hd, 0f);
        for (int t = 0; t <= pos; t++) {
          float p = s[t] * inv;
          int base = t * kvDim + ko;
          for (int i = 0; i < hd; i++) {
            att[qo + i] += p * vc[base + i];
          }
        }
      }
    }

    private void ropeTables(int position) {
      Config c = config;
      int half = c.headDim / 2;
      double p = position / (double) c.ropeLinearFactor;
      for (int i = 0; i < half; i++) {
        double invFreq = Math.pow(c.ropeTheta, -2.0 * i / c.headDim);
        if (ropeFreqFactors != null) {
          invFreq /= ropeFreqFactors[i];
        }
        double theta = p * invFreq;
        cos[i] = (float) Math.cos(theta);
        sin[i] = (float) Math.sin(theta);
      }
    }

    /** ggml's normal-mode RoPE: each pair (2i, 2i+1) of every head rotates by theta_i. */
    private void rope(float[] vec, int nHeads) {
      int hd = config.headDim;
      for (int h = 0; h < nHeads; h++) {
        int o = h * hd;
        for (int i = 0; i < hd / 2; i++) {
          float a = vec[o + 2 * i];
          float b = vec[o + 2 * i + 1];
          vec[o + 2 * i] = a * cos[i] - b * sin[i];
          vec[o + 2 * i + 1] = a * sin[i] + b * cos[i];
        }
      }
    }

    private void rmsNorm(float[] in, float[] weight, float[] out) {
      double ss = 0;
      for (float f : in) {
        ss += f * f;
      }
      float inv = (float) (1.0 / Math.sqrt(ss / in.length + config.rmsEps));
      for (int i = 0; i < in.length; i++) {
        out[i] = in[i] * inv * weight[i];
      }
    }

    private void add(float[] acc, float[] d) {
      for (int i = 0; i < acc.length; i++) {
        acc[i] += d[i];
      }
    }
  }
}
