package dev.compactor.core.infer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.compactor.core.model.CausalLM;

/**
 * {@link GgufLlama} behind the project's {@link CausalLM} interface, so generation, the CLI and
 * metrics run it like the DJL models: token ids come in as NDArrays, logits go out as fp32 NDArrays
 * (the math itself is all {@link GgufLlama}'s). Decoders hold one sequence ({@code batch = 1});
 * {@link #logits} runs each row of a batch through a fresh KV cache. Several tokens at once (a
 * prompt, or a row of {@code logits}) go through the batched prefill; single tokens through the
 * matrix-vector decode step.
 */
public final class GgufCausalLM implements CausalLM {

  /** Longest sequence a decoder takes: bounds the fp32 KV cache for long-context models. */
  public static final int MAX_POSITIONS = 4096;

  private final GgufLlama model;

  public GgufCausalLM(GgufLlama model) {
    this.model = model;
  }

  public GgufLlama model() {
    return model;
  }

  @Override
  public int vocabSize() {
    return model.config().vocab();
  }

  @Override
  public int maxSequenceLength() {
    return Math.min(model.config().context(), MAX_POSITIONS);
  }

  @Override
  public NDArray logits(NDManager manager, NDArray tokens) {
    long[] s = tokens.getShape().getShape();
    if (s.length != 2) {
      throw new IllegalArgumentException("tokens must be [batch, seq], found " + tokens.getShape());
    }
    int batch = (int) s[0];
    int seq = (int) s[1];
    int vocab = vocabSize();
    int[] ids = tokens.toType(ai.djl.ndarray.types.DataType.INT32, false).toIntArray();
    float[] out = new float[batch * seq * vocab];
    for (int b = 0; b < batch; b++) {
      GgufLlama.Session session = model.session(seq);
      float[][] rows =
          session.prefillAll(java.util.Arrays.copyOfRange(ids, b * seq, (b + 1) * seq));
      for (int t = 0; t < seq; t++) {
        System.arraycopy(rows[t], 0, out, (b * seq + t) * vocab, vocab);
      }
    }
    return manager.create(out, new Shape(batch, seq, vocab));
  }

  @Override
  public Decoder decoder(NDManager manager, int batch) {
    if (batch != 1) {
      throw new UnsupportedOperationException(
          "not supported yet: native GGUF decoding of batch=" + batch + " (one sequence only)");
    }
    GgufLlama.Session session = model.session(maxSequenceLength());
    return new Decoder() {
      @Override
      public NDArray step(NDArray tokens) {
        int[] ids = tokens.toType(ai.djl.ndarray.types.DataType.INT32, false).toIntArray();
        int vocab = vocabSize();
        float[] out = new float[ids.length * vocab];
        if (ids.length == 1) {
          System.arraycopy(session.next(ids[0]), 0, out, 0, vocab);
        } else {
          // a prompt: one batched prefill (all positions, as the Decoder contract returns them)
          float[][] rows = session.prefillAll(ids);
          for (int i = 0; i < ids.length; i++) {
            System.arraycopy(rows[i], 0, out, i * vocab, vocab);
          }
        }
        return manager.create(out, new Shape(1, ids.length, vocab));
      }

      @Override
      public int position() {
        return session.position();
      }

      @Override
      public void close() {}
    };
  }

  @Override
  public void close() {
    model.close();
  }
}
