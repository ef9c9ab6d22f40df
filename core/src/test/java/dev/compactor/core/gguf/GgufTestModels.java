package dev.compactor.core.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.compactor.core.model.Golden;
import dev.compactor.core.model.Transformer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * The models and checks the GGUF tests share: a small random in-memory Llama (config, llama3-style
 * tokenizer, checkpoint) for the exporter's unit tests, and for the round trips of the golden
 * checkpoints (export, read back with GgufToHf, compare logits) a copy of a golden model with a
 * byte-level tokenizer, the table of a file's tensor shapes, the independent reader read_gguf.py
 * and the logit error measures.
 */
public final class GgufTestModels {

  private GgufTestModels() {}

  public static final ObjectMapper JSON = new ObjectMapper();
  public static final int HIDDEN = 256;
  public static final int LAYERS = 2;
  public static final int HEADS = 4;
  public static final int KV_HEADS = 2;
  public static final int HEAD_DIM = HIDDEN / HEADS;
  public static final int FFN = 288; // a multiple of 32 but not of 256: ffn_down must fall back
  public static final int VOCAB = 80;

  public static ObjectNode config(boolean tied) {
    ObjectNode c = JSON.createObjectNode();
    c.put("model_type", "llama");
    c.putArray("architectures").add("LlamaForCausalLM");
    c.put("hidden_size", HIDDEN);
    c.put("num_hidden_layers", LAYERS);
    c.put("num_attention_heads", HEADS);
    c.put("num_key_value_heads", KV_HEADS);
    c.put("intermediate_size", FFN);
    c.put("vocab_size", VOCAB);
    c.put("max_position_embeddings", 2048);
    c.put("rope_theta", 500000.0);
    c.put("rms_norm_eps", 1e-5);
    c.put("tie_word_embeddings", tied);
    c.put("bos_token_id", 78);
    c.putArray("eos_token_id").add(79).add(3);
    return c;
  }

  public static ObjectNode tokenizer() {
    ObjectNode t = JSON.createObjectNode();
    ObjectNode model = t.putObject("model");
    model.put("type", "BPE");
    ObjectNode vocab = model.putObject("vocab");
    for (int i = 0; i < 70; i++) {
      vocab.put(i < 26 ? String.valueOf((char) ('a' + i)) : "tok" + i, i);
    }
    ArrayNode merges = model.putArray("merges");
    merges.add("a b");
    merges.addArray().add("c").add("d"); // the newer tokenizers format
    ArrayNode added = t.putArray("added_tokens");
    added.addObject().put("id", 78).put("content", "<|begin_of_text|>").put("special", true);
    added.addObject().put("id", 79).put("content", "<|end_of_text|>").put("special", true);
    added.addObject().put("id", 77).put("content", "<extra>").put("special", false);
    ObjectNode pre = t.putObject("pre_tokenizer");
    pre.put("type", "Sequence");
    ArrayNode seq = pre.putArray("pretokenizers");
    seq.addObject()
        .put("type", "Split")
        .putObject("pattern")
        .put("Regex", LlamaTokenizerMetadata.LLAMA3_PATTERN);
    seq.addObject().put("type", "ByteLevel");
    return t;
  }

  public static InMemoryTensorSource checkpoint(boolean withHead, long seed) {
    Random r = new Random(seed);
    InMemoryTensorSource s = new InMemoryTensorSource();
    s.put("model.embed_tokens.weight", rnd(r, VOCAB * HIDDEN), VOCAB, HIDDEN);
    for (int l = 0; l < LAYERS; l++) {
      String p = "model.layers." + l + ".";
      s.put(p + "input_layernorm.weight", rnd(r, HIDDEN), HIDDEN);
      s.put(p + "self_attn.q_proj.weight", rnd(r, HIDDEN * HIDDEN), HIDDEN, HIDDEN);
      s.put(
          p + "self_attn.k_proj.weight",
          rnd(r, KV_HEADS * HEAD_DIM * HIDDEN),
          KV_HEADS * HEAD_DIM,
          HIDDEN);
      s.put(
          p + "self_attn.v_proj.weight",
          rnd(r, KV_HEADS * HEAD_DIM * HIDDEN),
          KV_HEADS * HEAD_DIM,
          HIDDEN);
      s.put(p + "self_attn.o_proj.weight", rnd(r, HIDDEN * HIDDEN), HIDDEN, HIDDEN);
      s.put(p + "post_attention_layernorm.weight", rnd(r, HIDDEN), HIDDEN);
      s.put(p + "mlp.gate_proj.weight", rnd(r, FFN * HIDDEN), FFN, HIDDEN);
      s.put(p + "mlp.up_proj.weight", rnd(r, FFN * HIDDEN), FFN, HIDDEN);
      s.put(p + "mlp.down_proj.weight", rnd(r, HIDDEN * FFN), HIDDEN, FFN);
    }
    s.put("model.norm.weight", rnd(r, HIDDEN), HIDDEN);
    if (withHead) {
      s.put("lm_head.weight", rnd(r, VOCAB * HIDDEN), VOCAB, HIDDEN);
    }
    return s;
  }

  public static float[] rnd(Random r, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * 0.02);
    }
    return x;
  }

  /** Qwen2/2.5/3's pre-tokenizer regex, as their tokenizer.json spells it. */
  public static final String QWEN2_REGEX =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
          + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  /**
   * A Qwen-style byte-level BPE tokenizer.json of {@code vocabSize} tokens: {@code a..z}, {@code
   * t26..}, one merge, and the last id the special {@code <|endoftext|>}.
   */
  public static ObjectNode byteLevelTokenizer(int vocabSize) {
    ObjectNode t = JSON.createObjectNode();
    ObjectNode bpe = t.putObject("model");
    bpe.put("type", "BPE");
    ObjectNode vocab = bpe.putObject("vocab");
    for (int i = 0; i < vocabSize - 1; i++) {
      vocab.put(i < 26 ? String.valueOf((char) ('a' + i)) : "t" + i, i);
    }
    bpe.putArray("merges").add("a b");
    t.putArray("added_tokens")
        .addObject()
        .put("id", vocabSize - 1)
        .put("content", "<|endoftext|>")
        .put("special", true);
    ArrayNode pre = t.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
    pre.addObject()
        .put("type", "Split")
        .put("behavior", "Isolated")
        .putObject("pattern")
        .put("Regex", QWEN2_REGEX);
    pre.addObject().put("type", "ByteLevel").put("use_regex", false);
    t.putObject("post_processor").put("type", "ByteLevel");
    t.putObject("decoder").put("type", "ByteLevel");
    return t;
  }

  /**
   * A copy of golden model {@code g} under {@code dir} (without golden.safetensors) with a
   * byte-level tokenizer.json of the model's vocab_size, ready for GgufExport.
   */
  public static Path goldenModel(Golden g, Path dir) throws IOException {
    Path m = dir.resolve(g.name);
    Files.createDirectories(m);
    try (Stream<Path> files = Files.list(g.dir)) {
      for (Path f : files.toList()) {
        if (!f.getFileName().toString().equals("golden.safetensors")) {
          Files.copy(f, m.resolve(f.getFileName()));
        }
      }
    }
    int vocab = JSON.readTree(m.resolve("config.json").toFile()).path("vocab_size").asInt();
    Files.writeString(
        m.resolve("tokenizer.json"), JSON.writeValueAsString(byteLevelTokenizer(vocab)));
    return m;
  }

  /** Every tensor of the file with its row-major shape (GGML's ne reversed), sorted by name. */
  public static Map<String, List<Long>> tensorShapes(GgufReader r) {
    Map<String, List<Long>> tensors = new TreeMap<>();
    for (GgufTensorInfo i : r.tensors()) {
      List<Long> shape = new ArrayList<>();
      for (long d : i.shape()) {
        shape.add(d);
      }
      tensors.put(i.name(), shape);
    }
    return tensors;
  }

  /** The logits of the HF model in {@code model} on the golden case's input ids. */
  public static float[] logits(Path model, Golden g) throws IOException {
    try (Transformer t = Transformer.load(model, Device.cpu());
        NDManager m = NDManager.newBaseManager()) {
      return t.logits(m, g.inputIds(m)).toFloatArray();
    }
  }

  /** {@code ||got - want|| / ||want||}. */
  public static double relativeError(float[] want, float[] got) {
    assertEquals(want.length, got.length, "logit count");
    double err = 0;
    double norm = 0;
    for (int i = 0; i < want.length; i++) {
      err += (want[i] - got[i]) * (double) (want[i] - got[i]);
      norm += want[i] * (double) want[i];
    }
    return Math.sqrt(err / norm);
  }

  /** {@code max |got - want|}. */
  public static double maxAbsDiff(float[] want, float[] got) {
    assertEquals(want.length, got.length, "logit count");
    double worst = 0;
    for (int i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(want[i] - (double) got[i]));
    }
    return worst;
  }

  /**
   * Runs the independent numpy reader read_gguf.py on {@code gguf} and returns its output, which
   * must say that the file parses and, for the architectures it knows, that the tensor table is
   * llama.cpp's ({@code layout: ok}). Skips the calling test when python3 has no numpy.
   */
  public static String assertReadGgufPyOk(Path gguf) throws Exception {
    Assumptions.assumeTrue(pythonWithNumpy(), "python3 with numpy is not installed");
    Process p =
        new ProcessBuilder("python3", "src/test/python/read_gguf.py", gguf.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "read_gguf.py did not finish");
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("layout: ok") && out.contains("RESULT: OK"), out);
    return out;
  }

  private static boolean pythonWithNumpy() {
    try {
      Process p = new ProcessBuilder("python3", "-c", "import numpy").start();
      return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }
}
