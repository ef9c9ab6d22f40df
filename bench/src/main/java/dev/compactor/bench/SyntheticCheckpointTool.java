package dev.compactor.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a synthetic Llama-shaped BF16 checkpoint as a normal Hugging Face directory ({@code
 * config.json}, {@code model-0000i-of-0000n.safetensors} shards with {@code
 * model.safetensors.index.json}, a byte-level BPE {@code tokenizer.json}), so large-model paths can
 * be benchmarked without downloading a model. The defaults are Llama-2-7B's shape (hidden 4096, 32
 * layers, intermediate 11008, 32 heads, vocab 32000, untied head: 6.74 B parameters, 13.5 GB).
 *
 * <p>Streaming and disk-bound: each shard's header is computed from the shapes up front, then the
 * weights are generated straight into one reused 8 MiB direct buffer and written with a file
 * channel, so memory stays a few megabytes whatever the size. Weights are random bf16 values with a
 * random sign and mantissa and an exponent for magnitudes in [2^-7, 2^-3) (one xorshift64 step per
 * four weights; all finite, none zero); norms are 1.0.
 *
 * <p>Usage: {@code SyntheticCheckpointTool --out DIR [--layers 32] [--hidden 4096] [--intermediate
 * 11008] [--heads 32] [--kv-heads 32] [--vocab 32000] [--shard-gb 5] [--seed 1]}.
 */
public final class SyntheticCheckpointTool {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int BUFFER = 8 << 20;
  private static final short BF16_ONE = 0x3f80;

  /** The model shape to generate. */
  public record Shape(int hidden, int layers, int intermediate, int heads, int kvHeads, int vocab) {

    /** Llama-2-7B. */
    public static Shape llama7b() {
      return new Shape(4096, 32, 11008, 32, 32, 32000);
    }

    long parameters() {
      long n = 0;
      for (Tensor t : tensors()) {
        n += t.numel();
      }
      return n;
    }

    /** Every tensor in Hugging Face order (embedding, layers, final norm, head). */
    List<Tensor> tensors() {
      long h = hidden;
      long kv = (long) kvHeads * (hidden / heads);
      List<Tensor> out = new ArrayList<>();
      out.add(new Tensor("model.embed_tokens.weight", vocab, h));
      for (int l = 0; l < layers; l++) {
        String p = "model.layers." + l + ".";
        out.add(new Tensor(p + "input_layernorm.weight", h));
        out.add(new Tensor(p + "self_attn.q_proj.weight", h, h));
        out.add(new Tensor(p + "self_attn.k_proj.weight", kv, h));
        out.add(new Tensor(p + "self_attn.v_proj.weight", kv, h));
        out.add(new Tensor(p + "self_attn.o_proj.weight", h, h));
        out.add(new Tensor(p + "post_attention_layernorm.weight", h));
        out.add(new Tensor(p + "mlp.gate_proj.weight", intermediate, h));
        out.add(new Tensor(p + "mlp.up_proj.weight", intermediate, h));
        out.add(new Tensor(p + "mlp.down_proj.weight", h, intermediate));
      }
      out.add(new Tensor("model.norm.weight", h));
      out.add(new Tensor("lm_head.weight", vocab, h));
      return out;
    }
  }

  record Tensor(String name, long... shape) {
    long numel() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }

    long bytes() {
      return 2 * numel();
    }

    boolean isNorm() {
      return shape.length == 1;
    }
  }

  private SyntheticCheckpointTool() {}

  public static void main(String[] args) throws IOException {
    BenchArgs a = new BenchArgs(args);
    Shape s =
        new Shape(
            a.integer("--hidden", 4096),
            a.integer("--layers", 32),
            a.integer("--intermediate", 11008),
            a.integer("--heads", 32),
            a.integer("--kv-heads", a.integer("--heads", 32)),
            a.integer("--vocab", 32000));
    Path out = Paths.get(a.get("--out", null));
    long shardBytes = (long) (Double.parseDouble(a.get("--shard-gb", "5")) * 1e9);
    long t0 = System.nanoTime();
    long bytes = write(out, s, shardBytes, a.integer("--seed", 1));
    double sec = (System.nanoTime() - t0) / 1e9;
    System.out.printf(
        "wrote %s: %d parameters, %.3f GB in %.1f s (%.2f GB/s)%n",
        out, s.parameters(), bytes / 1e9, sec, bytes / 1e9 / sec);
  }

  /**
   * Writes the checkpoint for {@code shape} into {@code dir} (created; must not hold a model yet)
   * with shards of at most {@code shardBytes} of tensor data (one tensor per shard at least).
   * Returns the bytes written in all files.
   */
  public static long write(Path dir, Shape shape, long shardBytes, long seed) throws IOException {
    if (shape.hidden() % shape.heads() != 0 || shape.heads() % shape.kvHeads() != 0) {
      throw new IllegalArgumentException(
          "hidden must be a multiple of heads and heads of kv-heads: " + shape);
    }
    Files.createDirectories(dir);
    if (Files.exists(dir.resolve("config.json"))) {
      throw new IOException(dir.resolve("config.json") + " exists; refusing to overwrite a model");
    }
    List<List<Tensor>> shards = new ArrayList<>();
    long inShard = 0;
    for (Tensor t : shape.tensors()) {
      if (shards.isEmpty() || (inShard > 0 && inShard + t.bytes() > shardBytes)) {
        shards.add(new ArrayList<>());
        inShard = 0;
      }
      shards.get(shards.size() - 1).add(t);
      inShard += t.bytes();
    }
    long state = seed * 0x9E3779B97F4A7C15L | 1;
    ByteBuffer buf = ByteBuffer.allocateDirect(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
    Map<String, String> weightMap = new LinkedHashMap<>();
    long total = 0;
    long data = 0;
    for (int i = 0; i < shards.size(); i++) {
      String file = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
      byte[] header = header(shards.get(i));
      try (FileChannel ch =
          FileChannel.open(
              dir.resolve(file),
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE)) {
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        len.putLong(header.length).flip();
        writeFully(ch, len);
        writeFully(ch, ByteBuffer.wrap(header));
        for (Tensor t : shards.get(i)) {
          state = writeTensor(ch, buf, t, state);
          weightMap.put(t.name(), file);
          data += t.bytes();
        }
        total += ch.size();
      }
    }
    ObjectNode index = JSON.createObjectNode();
    index.putObject("metadata").put("total_size", data);
    ObjectNode map = index.putObject("weight_map");
    weightMap.forEach(map::put);
    total += writeJson(dir.resolve("model.safetensors.index.json"), index);
    total += writeJson(dir.resolve("config.json"), config(shape));
    total += writeJson(dir.resolve("tokenizer.json"), tokenizer(shape.vocab()));
    return total;
  }

  /** Streams one tensor's bf16 values through {@code buf}; returns the PRNG state after it. */
  private static long writeTensor(FileChannel ch, ByteBuffer buf, Tensor t, long state)
      throws IOException {
    long remaining = t.bytes();
    long s = state;
    while (remaining > 0) {
      int n = (int) Math.min(buf.capacity(), remaining);
      buf.clear().limit(n);
      if (t.isNorm()) {
        for (int i = 0; i < n; i += 2) {
          buf.putShort(i, BF16_ONE);
        }
      } else {
        int i = 0;
        for (; i + 8 <= n; i += 8) {
          s ^= s << 13;
          s ^= s >>> 7;
          s ^= s << 17;
          // Per 16-bit lane: keep the sign (bit 15), mantissa (bits 0-6) and two exponent bits
          // (7-8), then add a base exponent of 0x78, giving +-[2^-7, 2^-3): finite and non-zero.
          buf.putLong(i, (s & 0x81FF81FF81FF81FFL) + 0x3C003C003C003C00L);
        }
        for (; i < n; i += 2) {
          buf.putShort(i, (short) 0x3c00);
        }
      }
      writeFully(ch, buf);
      remaining -= n;
    }
    return s;
  }

  private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      ch.write(b);
    }
  }

  /** The safetensors JSON header, space-padded so the data starts at a multiple of 8. */
  static byte[] header(List<Tensor> tensors) throws IOException {
    ObjectNode h = JSON.createObjectNode();
    h.putObject("__metadata__").put("format", "pt").put("producer", "SyntheticCheckpointTool");
    long off = 0;
    for (Tensor t : tensors) {
      ObjectNode e = h.putObject(t.name());
      e.put("dtype", "BF16");
      ArrayNode sh = e.putArray("shape");
      for (long d : t.shape()) {
        sh.add(d);
      }
      e.putArray("data_offsets").add(off).add(off + t.bytes());
      off += t.bytes();
    }
    byte[] json = JSON.writeValueAsBytes(h);
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = new byte[padded];
    System.arraycopy(json, 0, out, 0, json.length);
    for (int i = json.length; i < padded; i++) {
      out[i] = ' ';
    }
    return out;
  }

  static ObjectNode config(Shape s) {
    ObjectNode c = JSON.createObjectNode();
    c.putArray("architectures").add("LlamaForCausalLM");
    c.put("model_type", "llama");
    c.put("hidden_size", s.hidden());
    c.put("num_hidden_layers", s.layers());
    c.put("intermediate_size", s.intermediate());
    c.put("num_attention_heads", s.heads());
    c.put("num_key_value_heads", s.kvHeads());
    c.put("vocab_size", s.vocab());
    c.put("max_position_embeddings", 4096);
    c.put("rms_norm_eps", 1e-5);
    c.put("rope_theta", 10000.0);
    c.put("hidden_act", "silu");
    c.put("tie_word_embeddings", false);
    c.put("torch_dtype", "bfloat16");
    c.put("bos_token_id", 256);
    c.put("eos_token_id", 257);
    return c;
  }

  /**
   * A valid byte-level BPE tokenizer.json: the 256 GPT-2 byte symbols, no merges, and {@code <s>} /
   * {@code </s>} as ids 256 and 257 (ids above are unused by the tokenizer).
   */
  static ObjectNode tokenizer(int vocab) {
    if (vocab < 258) {
      throw new IllegalArgumentException("vocab must hold the 256 bytes and 2 specials: " + vocab);
    }
    ObjectNode t = JSON.createObjectNode();
    t.put("version", "1.0");
    t.putNull("truncation");
    t.putNull("padding");
    ArrayNode added = t.putArray("added_tokens");
    String[] specials = {"<s>", "</s>"};
    for (int i = 0; i < specials.length; i++) {
      added
          .addObject()
          .put("id", 256 + i)
          .put("content", specials[i])
          .put("single_word", false)
          .put("lstrip", false)
          .put("rstrip", false)
          .put("normalized", false)
          .put("special", true);
    }
    t.putNull("normalizer");
    t.putObject("pre_tokenizer")
        .put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", true)
        .put("use_regex", true);
    t.putNull("post_processor");
    t.putObject("decoder")
        .put("type", "ByteLevel")
        .put("add_prefix_space", true)
        .put("trim_offsets", true)
        .put("use_regex", true);
    ObjectNode model = t.putObject("model");
    model.put("type", "BPE");
    model.putNull("dropout");
    model.putNull("unk_token");
    model.putNull("continuing_subword_prefix");
    model.putNull("end_of_word_suffix");
    model.put("fuse_unk", false);
    model.put("byte_fallback", false);
    ObjectNode v = model.putObject("vocab");
    String[] symbols = byteSymbols();
    for (int b = 0; b < 256; b++) {
      v.put(symbols[b], b);
    }
    model.putArray("merges");
    return t;
  }

  /** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 upwards. */
  static String[] byteSymbols() {
    String[] out = new String[256];
    int next = 256;
    for (int b = 0; b < 256; b++) {
      boolean printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      out[b] = new String(Character.toChars(printable ? b : next++));
    }
    return out;
  }

  private static long writeJson(Path p, ObjectNode node) throws IOException {
    byte[] b = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node);
    Files.write(p, b);
    return b.length;
  }
}
