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
 * A Llama-family decoder that runs a GGUF file's weights as stored (F32, F16, Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; so llama.cpp's Q4_K_M / Q5_K_M / Q6_K mixes) with the kernels of
 * {@link QuantKernels}, on the JVM: RMSNorm, RoPE (ggml's interleaved pairs, the layout {@code
 * LlamaGgufExporter} and convert_hf_to_gguf.py write for the {@code llama} arch; linear scaling and
 * llama3's {@code rope_freqs.weight} included), grouped-query attention over an fp32 KV cache,
 * SiLU-gated MLP, tied or separate output head.
 *
 * <p>Reads the metadata names {@code LlamaGgufExporter} writes (the same as llama.cpp's files).
 * Refused with "not supported yet": other architectures, experts, YaRN scaling, partial rotary
 * dimensions, tensors this graph does not use, and other ggml types (Q2_K, Q3_K, IQ*, BF16, ...).
 *
 * <p>Decoding ({@link Session#next}) is matrix-vector: each weight row is decoded inside the dot
 * kernel. A prompt goes through {@link Session#prefill} as blocks of up to {@value #PREFILL_CHUNK}
 * tokens: each layer runs on the whole {@code [T, hidden]} block with the tiled matrix-matrix
 * kernel of {@link QuantMatrix#matmul} (a tile of weights is decoded once for all T rows) and
 * causal attention over the block, filling the KV cache as {@code next} would.
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

  /**
   * Prompt tokens per batched block: bounds the block's scratch ({@code T x ffn} floats twice) and
   * keeps a {@code T x hidden} activation block in L2 while a weight tile sweeps it.
   */
  public static final int PREFILL_CHUNK = 64;

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
    float[] logits = s.prefill(prompt);
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
        rope(q, 0, c.heads);
        rope(k, 0, c.kvHeads);
        System.arraycopy(k, 0, keys[li], pos * kvDim, kvDim);
        System.arraycopy(v, 0, values[li], pos * kvDim, kvDim);
        int layer = li;
        if ((long) (pos + 1) * qRows < ATTENTION_SPLIT) {
          attend(layer, q, 0, att, 0, pos, 0, c.heads); // a hand-off would cost more than the work
        } else {
          threads.forRange(c.heads, (from, to) -> attend(layer, q, 0, att, 0, pos, from, to));
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
     * Feeds {@code tokens} at the next positions in batched blocks and returns the logits of the
     * last one (the array {@link #next} reuses). Equals calling {@code next} for each token up to
     * fp32 rounding; only the last position goes through the output head.
     */
    public float[] prefill(int[] tokens) {
      prefill(tokens, PREFILL_CHUNK, null);
      return logits;
    }

    /** {@link #prefill}, returning the logits of every position: {@code [tokens.length][vocab]}. */
    public float[][] prefillAll(int[] tokens) {
      float[][] all = new float[tokens.length][];
      prefill(tokens, PREFILL_CHUNK, all);
      return all;
    }

    /**
     * Blocks of at most {@code chunk} tokens; fills {@code all} (if not null) with each position.
     */
    void prefill(int[] tokens, int chunk, float[][] all) {
      if (tokens.length == 0) {
        throw new IllegalArgumentException("no tokens to prefill");
      }
      if (chunk < 1) {
        throw new IllegalArgumentException("chunk must be >= 1, found " + chunk);
      }
      if (pos + tokens.length > capacity) {
        throw new IllegalStateException(
            "KV cache full: "
                + capacity
                + " positions, "
                + pos
                + " used, "
                + tokens.length
                + " more");
      }
      for (int t : tokens) {
        if (t < 0 || t >= config.vocab) {
          throw new IllegalArgumentException("token " + t + " outside 0.." + (config.vocab - 1));
        }
      }
      for (int from = 0; from < tokens.length; from += chunk) {
        block(tokens, from, Math.min(chunk, tokens.length - from), all);
      }
    }

    /** Tokens {@code [from, from + n)} through every layer as one {@code [n, hidden]} block. */
    private void block(int[] tokens, int from, int n, float[][] all) {
      Config c = config;
      int hd = c.hidden;
      int kvDim = c.kvHeads * c.headDim;
      int qRows = q.length;
      float[] bx = new float[n * hd];
      float[] bxb = new float[n * hd];
      float[] bq = new float[n * qRows];
      float[] bk = new float[n * kvDim];
      float[] bv = new float[n * kvDim];
      float[] batt = new float[n * qRows];
      float[] bproj = new float[n * hd];
      float[] bgate = new float[n * c.ffn];
      float[] bup = new float[n * c.ffn];
      for (int i = 0; i < n; i++) {
        embedding.row(tokens[from + i], x);
        System.arraycopy(x, 0, bx, i * hd, hd);
      }
      int p0 = pos;
      for (int li = 0; li < layers.length; li++) {
        Layer l = layers[li];
        for (int i = 0; i < n; i++) {
          rmsNorm(bx, i * hd, l.attnNorm, bxb, i * hd);
        }
        threads.forRange(
            qRows + 2 * kvDim,
            (a, b) -> {
              spanBlock(l.q, bxb, n, bq, a, b, 0);
              spanBlock(l.k, bxb, n, bk, a, b, qRows);
              spanBlock(l.v, bxb, n, bv, a, b, qRows + kvDim);
            });
        for (int i = 0; i < n; i++) {
          ropeTables(p0 + i);
          rope(bq, i * qRows, c.heads);
          rope(bk, i * kvDim, c.kvHeads);
        }
        System.arraycopy(bk, 0, keys[li], p0 * kvDim, n * kvDim);
        System.arraycopy(bv, 0, values[li], p0 * kvDim, n * kvDim);
        int layer = li;
        // heads over threads; each head walks the block's rows in order with its own score row
        threads.forRange(
            c.heads,
            (a, b) -> {
              for (int i = 0; i < n; i++) {
                attend(layer, bq, i * qRows, batt, i * qRows, p0 + i, a, b);
              }
            });
        threads.forRange(hd, (a, b) -> l.o.matmul(batt, n, bproj, a, b));
        add(bx, bproj);
        for (int i = 0; i < n; i++) {
          rmsNorm(bx, i * hd, l.ffnNorm, bxb, i * hd);
        }
        int ffn = c.ffn;
        threads.forRange(
            ffn,
            (a, b) -> {
              l.gate.matmul(bxb, n, bgate, a, b);
              l.up.matmul(bxb, n, bup, a, b);
              for (int i = 0; i < n; i++) {
                for (int r = i * ffn + a; r < i * ffn + b; r++) {
                  float g = bgate[r];
                  bgate[r] = g / (1f + (float) Math.exp(-g)) * bup[r];
                }
              }
            });
        threads.forRange(hd, (a, b) -> l.down.matmul(bgate, n, bproj, a, b));
        add(bx, bproj);
      }
      pos = p0 + n;
      if (all == null) {
        rmsNorm(bx, (n - 1) * hd, outputNorm, xb, 0);
        threads.forRange(c.vocab, (a, b) -> output.dotRows(xb, logits, a, b));
        return;
      }
      for (int i = 0; i < n; i++) {
        rmsNorm(bx, i * hd, outputNorm, bxb, i * hd);
      }
      float[] blogits = new float[n * c.vocab];
      threads.forRange(c.vocab, (a, b) -> output.matmul(bxb, n, blogits, a, b));
      for (int i = 0; i < n; i++) {
        all[from + i] = java.util.Arrays.copyOfRange(blogits, i * c.vocab, (i + 1) * c.vocab);
      }
      System.arraycopy(blogits, (n - 1) * c.vocab, logits, 0, c.vocab);
    }

    /** {@link #span} for a block of {@code n} activation rows ({@link QuantMatrix#matmul}). */
    private void spanBlock(
        QuantMatrix m, float[] in, int n, float[] out, int from, int to, int base) {
      int a = Math.max(from - base, 0);
      int b = Math.min(to - base, m.rows());
      if (a < b) {
        m.matmul(in, n, out, a, b);
      }
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

    /**
     * Causal attention of the query row at {@code qv[qOff..]} over cache positions {@code 0..last}
     * for heads {@code [fromHead, toHead)}, written to {@code out[outOff..]}.
     */
    private void attend(
        int layer,
        float[] qv,
        int qOff,
        float[] out,
        int outOff,
        int last,
        int fromHead,
        int toHead) {
      Config c = config;
      int hd = c.headDim;
      int kvDim = c.kvHeads * hd;
      int group = c.heads / c.kvHeads;
      float scale = (float) (1.0 / Math.sqrt(hd));
      float[] kc = keys[layer];
      float[] vc = values[layer];
      for (int h = fromHead; h < toHead; h++) {
        float[] s = scores[h];
        int qo = qOff + h * hd;
        int ao = outOff + h * hd;
        int ko = (h / group) * hd;
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t <= last; t++) {
          float dot = 0;
          int base = t * kvDim + ko;
          for (int i = 0; i < hd; i++) {
            dot += qv[qo + i] * kc[base + i];
          }
          s[t] = dot * scale;
          max = Math.max(max, s[t]);
        }
        float sum = 0;
        for (int t = 0; t <= last; t++) {
          s[t] = (float) Math.exp(s[t] - max);
          sum += s[t];
        }
        float inv = 1f / sum;
        java.util.Arrays.fill(out, ao, ao + hd, 0f);
        for (int t = 0; t <= last; t++) {
          float p = s[t] * inv;
          int base = t * kvDim + ko;
          for (int i = 0; i < hd; i++) {
            out[ao + i] += p * vc[base + i];
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
    private void rope(float[] vec, int off, int nHeads) {
      int hd = config.headDim;
      for (int h = 0; h < nHeads; h++) {
        int o = off + h * hd;
        for (int i = 0; i < hd / 2; i++) {
          float a = vec[o + 2 * i];
          float b = vec[o + 2 * i + 1];
          vec[o + 2 * i] = a * cos[i] - b * sin[i];
          vec[o + 2 * i + 1] = a * sin[i] + b * cos[i];
        }
      }
    }

    private void rmsNorm(float[] in, float[] weight, float[] out) {
      rmsNorm(in, 0, weight, out, 0);
    }

    /** RMSNorm of the {@code hidden} values at {@code in[inOff..]} into {@code out[outOff..]}. */
    private void rmsNorm(float[] in, int inOff, float[] weight, float[] out, int outOff) {
      int n = config.hidden;
      double ss = 0;
      for (int i = 0; i < n; i++) {
        float f = in[inOff + i];
        ss += f * f;
      }
      float inv = (float) (1.0 / Math.sqrt(ss / n + config.rmsEps));
      for (int i = 0; i < n; i++) {
        out[outOff + i] = in[inOff + i] * inv * weight[i];
      }
    }

    private void add(float[] acc, float[] d) {
      for (int i = 0; i < acc.length; i++) {
        acc[i] += d[i];
      }
    }
  }
}
